package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/examples/internal/demotest"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// The tests that run an export pass every setting that the environment
// could supply as a flag, so that they can run in parallel (t.Setenv
// cannot).

// runProgram runs the program in-process and returns its exit code and
// output, which must hold no secret.
func runProgram(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	return demotest.Run(t, run, args...)
}

// totals is the summary line of a successful run.
type totals struct{ files, resources, errors, deleted, tokens, unauthorized int }

var (
	fileLine    = regexp.MustCompile(`(?m)^([A-Za-z]+-[0-9]+\.ndjson): ([0-9]+) ([A-Za-z]+)$`)
	totalsLine  = regexp.MustCompile(`(?m)^([0-9]+) files, ([0-9]+) resources, ([0-9]+) errors?, ([0-9]+) deleted; ([0-9]+) token requests?, ([0-9]+) 401 answers?$`)
	storageLine = regexp.MustCompile(`(?m)^the storage host saw ([0-9]+) requests, ([0-9]+) with an Authorization header$`)
)

// parseTotals reads the summary line and checks it against the file lines.
func parseTotals(t *testing.T, stdout string) totals {
	t.Helper()
	m := totalsLine.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no summary line in output:\n%s", stdout)
	}
	var n totals
	fmt.Sscan(strings.Join(m[1:], " "), &n.files, &n.resources, &n.errors, &n.deleted, &n.tokens, &n.unauthorized)
	files, resources := 0, 0
	for _, f := range fileLine.FindAllStringSubmatch(stdout, -1) {
		var count int
		fmt.Sscan(f[2], &count)
		files, resources = files+1, resources+count
		if !strings.HasPrefix(f[1], f[3]+"-") {
			t.Errorf("file line %q: %s resources in a file named for another type", f[0], f[3])
		}
	}
	if files != n.files || resources != n.resources {
		t.Errorf("%d file lines with %d resources; summary says %d and %d", files, resources, n.files, n.resources)
	}
	return n
}

// tokenBudget is the most token requests an export that lasted span may
// make with tokens of the given lifetime: the first, one per refresh
// period the export spans (oauthclient refreshes a token in use no earlier
// than its lifetime minus the default expiry leeway, a tenth of the
// lifetime within 1–10 s and at most half of it, and minus the default
// early-refresh window, a quarter of the lifetime), and one for each token
// the server rejected.
func tokenBudget(span, lifetime time.Duration, rejected int) int {
	leeway := min(max(lifetime/10, time.Second), 10*time.Second, lifetime/2)
	period := lifetime - leeway - lifetime/4
	return 1 + int(span/period) + rejected
}

func TestBulkExportEmbedded(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runProgram(t, "-fhir-base=", "-token-url=", "-scope", "system/Patient.rs")
	if code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
	}
	n := parseTotals(t, stdout)
	if n.files != 4 || n.resources != 12 || n.errors != 1 || n.deleted != 1 {
		t.Errorf("totals %+v: want 4 files, 12 resources, 1 error, 1 deleted", n)
	}
	// The embedded server revokes the token of one poll: the client
	// recovers with a new one.
	if n.unauthorized != 1 || n.tokens < 2 {
		t.Errorf("%d 401 answers and %d token requests; want 1 and at least 2", n.unauthorized, n.tokens)
	}
	m := storageLine.FindStringSubmatch(stdout)
	if m == nil || m[1] != "6" || m[2] != "0" {
		t.Errorf("storage line %q: want 6 requests, none with an Authorization header", m)
	}
	for _, want := range []string{"poll 1: 429 Too Many Requests", "(in progress: step 1 of 4)", "deleted the export: 202 Accepted"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
}

// TestBulkExportRealServer runs exports against a server given by flags,
// whose tokens live 4 s and which revokes one token mid-export, and checks
// what the server saw.
func TestBulkExportRealServer(t *testing.T) {
	t.Parallel()
	const lifetime = 4 * time.Second
	tests := []struct {
		name       string
		opts       oauthtest.BulkOptions
		args       func(srv *oauthtest.Server) []string
		wantFiles  int
		longExport bool // spans more than a token lifetime
	}{
		{
			name: "discovery, system export, token rejected while polling",
			opts: oauthtest.BulkOptions{Polls: 5, Throttle: http.StatusServiceUnavailable, RejectTokenAt: 3},
			args: func(*oauthtest.Server) []string {
				return []string{"-token-url="}
			},
			wantFiles:  4,
			longExport: true,
		},
		{
			// The kick-off is a POST with a Parameters body: the Transport
			// must send it again, body included, with the new token.
			name: "token URL, Group export as POST, token rejected at kick-off",
			opts: oauthtest.BulkOptions{Polls: 1, RejectTokenAt: 1},
			args: func(srv *oauthtest.Server) []string {
				return []string{"-token-url", srv.TokenURL(), "-group", "g1", "-type", "Patient"}
			},
			wantFiles: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, keyFile := demotest.RealServer(t, "ES384", "system/Patient.rs")
			srv.SetTokenLifetime(lifetime)
			if err := srv.SetBulkOptions(tt.opts); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1", "-scope", "system/Patient.rs"}, tt.args(srv)...)
			code, stdout, stderr := runProgram(t, args...)
			end := time.Now()
			if code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, stderr)
			}
			n := parseTotals(t, stdout)
			st, bulk := srv.Stats(), srv.BulkStats()

			if bulk.StorageWithAuthorization != 0 {
				t.Errorf("%d requests to the storage host carried an Authorization header", bulk.StorageWithAuthorization)
			}
			if n.files != tt.wantFiles || bulk.StorageRequests != tt.wantFiles {
				t.Errorf("%d files downloaded, %d storage requests; want %d", n.files, bulk.StorageRequests, tt.wantFiles)
			}
			if bulk.KickOffs != 1 || bulk.Deletes != 1 || bulk.Manifests != 1 {
				t.Errorf("BulkStats = %+v: want one kick-off, manifest and delete", bulk)
			}

			// 401 recovery: exactly the one revoked token was refused, and
			// the request was sent again with a new one.
			if bulk.RejectedTokens != 1 || st.ResourceRejected != 1 || n.unauthorized != 1 {
				t.Errorf("%d tokens revoked, %d resource requests refused, %d 401s seen by the program; want 1 each",
					bulk.RejectedTokens, st.ResourceRejected, n.unauthorized)
			}

			log := srv.TokenRequestLog()
			if len(log) == 0 || n.tokens != len(log) {
				t.Fatalf("the program reports %d token requests, the server saw %d", n.tokens, len(log))
			}
			span := end.Sub(log[0].Time)
			if budget := tokenBudget(span, lifetime, bulk.RejectedTokens); len(log) > budget {
				t.Errorf("%d token requests over %v with %v tokens; the early-refresh budget is %d", len(log), span.Round(time.Millisecond), lifetime, budget)
			}
			if tt.longExport && (span <= lifetime || len(log) < 3) {
				t.Errorf("the export took %v and %d token requests; want it to outlive a %v token, needing a refresh besides the rejection", span.Round(time.Millisecond), len(log), lifetime)
			}
		})
	}
}

func TestBulkExportFailureExitsOne(t *testing.T) {
	t.Parallel()
	// The client may only read Observations: the kick-off is forbidden.
	srv, keyFile := demotest.RealServer(t, "RS384", "system/Observation.rs")
	code, stdout, stderr := runProgram(t, "-fhir-base", srv.FHIRBase(), "-client-id", "app", "-key", keyFile, "-kid", "k1",
		"-scope", "system/Observation.rs", "-token-url=")
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, "kick-off: 403 Forbidden") || stdout != "" {
		t.Errorf("stdout %q, stderr %q: want only the kick-off's 403 on stderr", stdout, stderr)
	}
	if st := srv.BulkStats(); st.KickOffs != 0 || st.Deletes != 0 {
		t.Errorf("BulkStats = %+v after a refused kick-off", st)
	}
}

// TestBulkExportRedactsFileURLs downloads a file whose signed URL points
// at a host that is down: the error names the file without the signature.
func TestBulkExportRedactsFileURLs(t *testing.T) {
	t.Parallel()
	auth, keyFile := demotest.RealServer(t, "ES256", "system/Patient.rs")
	const signature = "X-Amz-Signature=sig-marker-5"
	fhir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method + " " + r.URL.Path {
		case "GET /fhir/$export":
			w.Header().Set("Content-Location", "/fhir/status")
			w.WriteHeader(http.StatusAccepted)
		case "GET /fhir/status":
			fmt.Fprintf(w, `{"output":[{"type":"Patient","url":"http://127.0.0.1:1/f.ndjson?%s"}],"error":[]}`, signature)
		case "DELETE /fhir/status":
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	defer fhir.Close()
	code, stdout, stderr := runProgram(t, "-fhir-base", fhir.URL+"/fhir", "-token-url", auth.TokenURL(),
		"-client-id", "app", "-key", keyFile, "-kid", "k1", "-scope", "system/Patient.rs")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1/f.ndjson") || !strings.Contains(stdout, "deleted the export: 202 Accepted") {
		t.Errorf("exit code %d, stdout %q, stderr %q: want 1, the export deleted, and the file named", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "sig-marker-5") {
		t.Error("the output holds the file URL's signature")
	}
}

func TestBulkExportUsage(t *testing.T) {
	tests := []demotest.UsageTest{
		{Name: "help", Args: []string{"-h"}, WantCode: 0, WantErr: "-token-url"},
		{Name: "zero workers", Args: []string{"-workers", "0"}, WantCode: 2, WantErr: "-workers"},
		{Name: "argument", Args: []string{"extra"}, WantCode: 2, WantErr: "unexpected argument"},
		{Name: "unknown flag", Args: []string{"-nope"}, WantCode: 2, WantErr: "-nope"},
		{Name: "missing key file", Args: []string{"-fhir-base", "https://fhir.example.org/R4", "-client-id", "app", "-key", filepath.Join(t.TempDir(), "missing.pem"), "-kid", "k1"}, WantCode: 1, WantErr: "missing.pem"},
	}
	tests = append(tests, demotest.RegistrationUsageTests()...)
	demotest.CheckUsage(t, run, func(t *testing.T) { demotest.ClearEnv(t, "TOKEN_URL") }, tests)
}
