package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestA"}`,
		`{"Action":"pass","Package":"p","Test":"TestA","Elapsed":0.1}`,
		`{"Action":"output","Package":"p","Test":"TestB","Output":"boom\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestB"}`,
		`{"Action":"output","Package":"p","Test":"TestC","Output":"    x_test.go:9: no redis\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestC"}`,
		`{"Action":"fail","Package":"p","Elapsed":1.5}`,
		`{"Action":"start","Package":"q"}`,
		`# q [build failed]`,
	}, "\n")
	var out bytes.Buffer
	if code := run(strings.NewReader(in), nil, &out); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	s := out.String()
	for _, want := range []string{"FAIL p (1.5s)", "FAIL q (no result)", "boom", "p TestC: x_test.go:9: no redis", "# q [build failed]", "1 passed, 3 failed, 1 skipped"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	out.Reset()
	if code := run(strings.NewReader(`{"Action":"start","Package":"p"}`+"\n"+`{"Action":"pass","Package":"p","Test":"T"}`+"\n"+`{"Action":"pass","Package":"p"}`), nil, &out); code != 0 || !strings.HasSuffix(out.String(), "1 passed, 0 failed, 0 skipped\n") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}

func TestRunCountsChecks(t *testing.T) {
	tests := []struct {
		name     string
		checks   string
		wantCode int
		want     []string
	}{
		{
			name:     "all pass",
			checks:   "ok gofmt\nok go vet\nok fuzz ./oauthtest FuzzTokenEndpoint\n",
			wantCode: 0,
			want:     []string{"ok   gofmt", "ok   fuzz ./oauthtest FuzzTokenEndpoint", "4 passed, 0 failed, 0 skipped"},
		},
		{
			name:     "staticcheck fails",
			checks:   "ok gofmt\nFAIL staticcheck\n\n",
			wantCode: 1,
			want:     []string{"FAIL staticcheck", "--- FAIL: staticcheck (its output is above)", "2 passed, 1 failed, 0 skipped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := `{"Action":"start","Package":"p"}` + "\n" + `{"Action":"pass","Package":"p","Test":"T"}` + "\n" + `{"Action":"pass","Package":"p"}` + "\n"
			checks, err := parseChecks(strings.NewReader(tt.checks))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if code := run(strings.NewReader(in), checks, &out); code != tt.wantCode {
				t.Errorf("exit %d, want %d", code, tt.wantCode)
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
			if !strings.HasSuffix(out.String(), tt.want[len(tt.want)-1]+"\n") {
				t.Errorf("output does not end with the closing line %q:\n%s", tt.want[len(tt.want)-1], out.String())
			}
		})
	}
}

func TestParseChecksRefusesUnknownResult(t *testing.T) {
	if _, err := parseChecks(strings.NewReader("ok gofmt\nmaybe vet\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("parseChecks error %v, want one naming line 2", err)
	}
}

// TestSkipReason checks that a skipped test is listed with the message it
// gave, not with go test's own "--- SKIP" line that follows it.
func TestSkipReason(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"run","Package":"p","Test":"TestC/zsh"}`,
		`{"Action":"output","Package":"p","Test":"TestC/zsh","Output":"=== RUN   TestC/zsh\n"}`,
		`{"Action":"output","Package":"p","Test":"TestC/zsh","Output":"    c_test.go:9: zsh not installed\n"}`,
		`{"Action":"output","Package":"p","Test":"TestC/zsh","Output":"--- SKIP: TestC/zsh (0.01s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestC/zsh"}`,
		`{"Action":"run","Package":"p","Test":"TestD"}`,
		`{"Action":"output","Package":"p","Test":"TestD","Output":"--- SKIP: TestD (0.00s)\n"}`,
		`{"Action":"skip","Package":"p","Test":"TestD"}`,
		`{"Action":"pass","Package":"p"}`,
	}, "\n")
	var out bytes.Buffer
	if code := run(strings.NewReader(in), nil, &out); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	for _, want := range []string{"  p TestC/zsh: c_test.go:9: zsh not installed\n", "  p TestD: no reason given\n", "0 passed, 0 failed, 2 skipped\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
