package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestDPoPKeyFlag: keygen makes a DPoP key; token, header and get use it
// against a server that requires DPoP nonces at its token endpoint; the
// two header lines work together at the resource.
func TestDPoPKeyFlag(t *testing.T) {
	srv, flags := keyClient(t, "k1")
	srv.SetDPoPNonceRequired(true, false)
	dpopKey := filepath.Join(t.TempDir(), "dpop.pem")
	wantCode(t, oauthkit(t, nil, "keygen", "-alg", "ES256", "-out", dpopKey), 0, true)
	flags = append(flags, "-scope", patientScope, "-cache", "memory", "-dpop-key", dpopKey)

	tok := oauthkit(t, nil, cmdArgs("token", flags, "-o", "json")...)
	wantCode(t, tok, 0, true)
	if !strings.Contains(tok.stdout, `"token_type": "DPoP"`) {
		t.Fatal("token -o json: token_type is not DPoP")
	}

	target := srv.FHIRBase() + "/Patient"
	h := oauthkit(t, nil, cmdArgs("header", flags, "-url", target)...)
	wantCode(t, h, 0, true)
	lines := strings.Split(strings.TrimSuffix(h.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "Authorization: DPoP ") || !strings.HasPrefix(lines[1], "DPoP: ") {
		t.Fatalf("header: %d lines, want the Authorization and DPoP lines", len(lines))
	}
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("the header lines at the resource: status %d", resp.StatusCode)
	}

	if r := oauthkit(t, nil, cmdArgs("header", flags)...); r.code == 0 || !strings.Contains(r.stderr, "-url") {
		t.Fatalf("header -dpop-key without -url: exit %d", r.code)
	}
	// token -o header cannot add the proof line: it says to use header.
	if r := oauthkit(t, nil, cmdArgs("token", flags, "-o", "header")...); r.code != 2 || !strings.Contains(r.stderr, "header command") {
		t.Fatalf("token -o header -dpop-key: exit %d", r.code)
	}
	// header's help and shell completion know -url and -method, with or
	// without -dpop-key on the command line.
	help := oauthkit(t, nil, "header", "-h")
	for _, f := range []string{"-url", "-method", "-dpop-key"} {
		if !strings.Contains(help.stderr+help.stdout, f) {
			t.Errorf("header -h does not list %s", f)
		}
	}
	if c := oauthkit(t, nil, "completion", "bash"); !strings.Contains(c.stdout, "-url") {
		t.Error("bash completion does not offer header's -url")
	}
	get := oauthkit(t, nil, cmdArgs("get", flags, target)...)
	wantCode(t, get, 0, true)
	if !strings.Contains(get.stdout, `"Bundle"`) {
		t.Fatal("get: no Bundle")
	}
	if r := oauthkit(t, nil, cmdArgs("token", flags[:len(flags)-1], filepath.Join(t.TempDir(), "missing.pem"))...); r.code == 0 || !strings.Contains(r.stderr, "-dpop-key") {
		t.Fatalf("missing -dpop-key file: exit %d", r.code)
	}
}
