package demotest

import (
	"strings"
	"testing"
)

// UsageTest is a command line and how the program must answer it.
type UsageTest struct {
	Name     string
	Args     []string
	WantCode int    // exit code
	WantErr  string // part of stderr
}

// RealArgs returns a complete registration at a real server, as flags.
func RealArgs() []string {
	return []string{"-fhir-base", "https://fhir.example.org/R4", "-client-id", "app", "-key", "k.pem", "-kid", "k1"}
}

// RegistrationUsageTests returns the usage errors of every example for an
// incomplete registration at a real server.
func RegistrationUsageTests() []UsageTest {
	return []UsageTest{
		{Name: "no client ID", Args: []string{"-fhir-base", "https://fhir.example.org/R4", "-key", "k.pem", "-kid", "k1"}, WantCode: 2, WantErr: "-client-id"},
		{Name: "no key", Args: []string{"-fhir-base", "https://fhir.example.org/R4", "-client-id", "app", "-kid", "k1"}, WantCode: 2, WantErr: "-key"},
		{Name: "no key ID", Args: []string{"-fhir-base", "https://fhir.example.org/R4", "-client-id", "app", "-key", "k.pem"}, WantCode: 2, WantErr: "-kid"},
	}
}

// CheckUsage runs each test as a subtest: setup (which isolates the test
// from the environment), then the program with the test's arguments.
func CheckUsage(t *testing.T, run RunFunc, setup func(*testing.T), tests []UsageTest) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.Name, func(t *testing.T) {
			setup(t)
			code, _, stderr := Run(t, run, tt.Args...)
			if code != tt.WantCode {
				t.Errorf("exit code %d, want %d", code, tt.WantCode)
			}
			if !strings.Contains(stderr, tt.WantErr) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.WantErr)
			}
		})
	}
}
