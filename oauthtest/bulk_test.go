package oauthtest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bulkFixture is a server with a client allowed to export, and one of its
// tokens. Tests never print the token.
type bulkFixture struct {
	t   *testing.T
	srv *Server
	tok string
}

func newBulkFixture(t *testing.T, tls bool, o BulkOptions) *bulkFixture {
	t.Helper()
	srv := NewServer()
	if tls {
		srv.Close()
		srv = NewTLSServer()
	}
	t.Cleanup(srv.Close)
	if err := srv.RegisterClient(Client{ID: "bulk", Secret: "bulk-secret", AuthMethod: AuthClientSecretBasic, Scopes: []string{"system/Patient.rs"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetBulkOptions(o); err != nil {
		t.Fatal(err)
	}
	f := &bulkFixture{t: t, srv: srv}
	f.tok = f.newToken()
	return f
}

// newToken gets an access token with the client credentials grant.
func (f *bulkFixture) newToken() string {
	f.t.Helper()
	form := url.Values{"grant_type": {GrantClientCredentials}, "scope": {"system/Patient.rs"}}
	req, _ := http.NewRequest(http.MethodPost, f.srv.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("bulk", "bulk-secret")
	resp, err := f.srv.HTTPClient().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		f.t.Fatalf("token request: status %d, decode error %v", resp.StatusCode, err)
	}
	return tr.AccessToken
}

// do sends a request with the given token ("" for none) and returns the
// answer with its body read.
func (f *bulkFixture) do(method, u, tok string, body []byte, header http.Header) (*http.Response, []byte) {
	f.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := f.srv.HTTPClient().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, b
}

// kickOffHeader is what a Bulk Data client sends with a kick-off.
func kickOffHeader() http.Header {
	return http.Header{"Accept": {"application/fhir+json"}, "Prefer": {"respond-async"}}
}

// kickOff starts a system export and returns its status URL.
func (f *bulkFixture) kickOff() string {
	f.t.Helper()
	resp, _ := f.do(http.MethodGet, f.srv.FHIRBase()+"/$export", f.tok, nil, kickOffHeader())
	loc := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, f.srv.FHIRBase()+"/bulkstatus/") {
		f.t.Fatalf("kick-off: status %d, Content-Location %q", resp.StatusCode, loc)
	}
	return loc
}

// bulkManifest is the completion manifest as the tests read it.
type bulkManifest struct {
	TransactionTime     string `json:"transactionTime"`
	Request             string `json:"request"`
	RequiresAccessToken *bool  `json:"requiresAccessToken"`
	Output              []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"output"`
	Error []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"error"`
	Deleted []struct {
		Type  string `json:"type"`
		URL   string `json:"url"`
		Count int    `json:"count"`
	} `json:"deleted"`
}

// ndjsonLines returns the resourceType of each line of an NDJSON body.
func ndjsonLines(t *testing.T, body []byte) []string {
	t.Helper()
	var types []string
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		var r struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("line %d is not JSON: %v", len(types)+1, err)
		}
		types = append(types, r.ResourceType)
	}
	return types
}

func TestBulkExportFlow(t *testing.T) {
	f := newBulkFixture(t, false, BulkOptions{Polls: 3, Errors: 2, Deleted: 1})
	status := f.kickOff()

	var seconds, dates int
	for i := 1; i <= 3; i++ {
		resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("poll %d: status %d, want 202", i, resp.StatusCode)
		}
		ra := resp.Header.Get("Retry-After")
		if _, err := strconv.Atoi(ra); err == nil {
			seconds++
		} else if _, err := http.ParseTime(ra); err == nil {
			dates++
		} else {
			t.Errorf("poll %d: Retry-After %q is neither delay-seconds nor an HTTP-date", i, ra)
		}
		if want := "in progress: step " + strconv.Itoa(i) + " of 4"; resp.Header.Get("X-Progress") != want {
			t.Errorf("poll %d: X-Progress %q, want %q", i, resp.Header.Get("X-Progress"), want)
		}
	}
	if seconds == 0 || dates == 0 {
		t.Errorf("Retry-After forms: %d delay-seconds, %d HTTP-dates; want both", seconds, dates)
	}

	resp, body := f.do(http.MethodGet, status, f.tok, nil, nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("final poll: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var m bulkManifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if _, err := time.Parse(time.RFC3339, m.TransactionTime); err != nil {
		t.Errorf("transactionTime %q: %v", m.TransactionTime, err)
	}
	if m.Request != f.srv.FHIRBase()+"/$export" || m.RequiresAccessToken == nil || *m.RequiresAccessToken {
		t.Errorf("request %q, requiresAccessToken %v", m.Request, m.RequiresAccessToken)
	}
	if len(m.Output) != 4 || len(m.Error) != 1 || len(m.Deleted) != 1 {
		t.Fatalf("%d output, %d error, %d deleted files; want 4, 1, 1", len(m.Output), len(m.Error), len(m.Deleted))
	}
	storage := f.srv.StorageURL()
	if !strings.HasPrefix(storage, "http://127.0.0.1:") || strings.HasPrefix(storage, f.srv.URL) {
		t.Fatalf("storage host %q: want another loopback origin than %q", storage, f.srv.URL)
	}
	for _, o := range append(append(m.Output, m.Error...), m.Deleted...) {
		if !strings.HasPrefix(o.URL, storage+"/") {
			t.Errorf("file %q is not on the storage host", o.URL)
			continue
		}
		resp, body := f.do(http.MethodGet, o.URL, "", nil, nil)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/fhir+ndjson" {
			t.Errorf("GET %s: status %d, Content-Type %q", o.URL, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		lines := ndjsonLines(t, body)
		if len(lines) != o.Count {
			t.Errorf("%s: %d lines, manifest count %d", o.URL, len(lines), o.Count)
		}
		for _, rt := range lines {
			if rt != o.Type {
				t.Errorf("%s: a %s line in a %s file", o.URL, rt, o.Type)
			}
		}
	}
	// The storage host refuses the token, as a signed-URL bucket would.
	if resp, _ := f.do(http.MethodGet, m.Output[0].URL, f.tok, nil, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("storage request with Authorization: status %d, want 400", resp.StatusCode)
	}

	if resp, _ := f.do(http.MethodDelete, status, f.tok, nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Errorf("DELETE: status %d, want 202", resp.StatusCode)
	}
	if resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("poll after DELETE: status %d, want 404", resp.StatusCode)
	}
	if resp, _ := f.do(http.MethodGet, m.Output[0].URL, "", nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("file after DELETE: status %d, want 404", resp.StatusCode)
	}
	if resp, _ := f.do(http.MethodDelete, status, f.tok, nil, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: status %d, want 404", resp.StatusCode)
	}

	want := BulkStats{KickOffs: 1, Polls: 5, Manifests: 1, Deletes: 1, StorageRequests: 8, StorageWithAuthorization: 1}
	if got := f.srv.BulkStats(); got != want {
		t.Errorf("BulkStats = %+v, want %+v", got, want)
	}
}

func TestBulkKickOff(t *testing.T) {
	params := func(ps ...string) []byte {
		var list []map[string]string
		for i := 0; i+1 < len(ps); i += 2 {
			list = append(list, map[string]string{"name": ps[i], "valueString": ps[i+1]})
		}
		b, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": list})
		return b
	}
	fhirBody := http.Header{"Content-Type": {"application/fhir+json"}}
	tests := []struct {
		name      string
		method    string
		path      string // after the FHIR base
		noToken   bool
		header    http.Header // replaces kickOffHeader's members
		body      []byte
		want      int
		wantTypes []string // with 202: the types of the manifest
	}{
		{name: "system GET", method: "GET", path: "/$export", want: 202, wantTypes: []string{"Patient", "Observation"}},
		{name: "group GET", method: "GET", path: "/Group/g-1/$export", want: 202, wantTypes: []string{"Patient", "Observation"}},
		{name: "type filter", method: "GET", path: "/$export?_type=Observation&_outputFormat=application%2Ffhir%2Bndjson&_since=2024-01-01T00:00:00Z", want: 202, wantTypes: []string{"Observation"}},
		{name: "POST Parameters", method: "POST", path: "/$export", header: fhirBody, body: params("_type", "Patient", "_outputFormat", "ndjson"), want: 202, wantTypes: []string{"Patient"}},
		{name: "group POST", method: "POST", path: "/Group/g1/$export", header: fhirBody, body: params("_type", "Patient,Observation"), want: 202, wantTypes: []string{"Patient", "Observation"}},
		{name: "lenient ignores unknown", method: "GET", path: "/$export?_type=Patient,Condition&_elements=id", header: http.Header{"Prefer": {"respond-async, handling=lenient"}}, want: 202, wantTypes: []string{"Patient"}},
		{name: "no token", method: "GET", path: "/$export", noToken: true, want: 401},
		{name: "no Prefer", method: "GET", path: "/$export", header: http.Header{"Prefer": nil}, want: 400},
		{name: "Prefer without respond-async", method: "GET", path: "/$export", header: http.Header{"Prefer": {"handling=lenient"}}, want: 400},
		{name: "no Accept", method: "GET", path: "/$export", header: http.Header{"Accept": nil}, want: 400},
		{name: "Accept ndjson", method: "GET", path: "/$export", header: http.Header{"Accept": {"application/fhir+ndjson"}}, want: 400},
		{name: "unknown type", method: "GET", path: "/$export?_type=Condition", want: 400},
		{name: "unknown parameter", method: "GET", path: "/$export?_elements=id", want: 400},
		{name: "bad output format", method: "GET", path: "/$export?_outputFormat=text%2Fcsv", want: 400},
		{name: "bad since", method: "GET", path: "/$export?_since=yesterday", want: 400},
		{name: "POST without body", method: "POST", path: "/$export", header: fhirBody, want: 400},
		{name: "POST form body", method: "POST", path: "/$export", header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, body: []byte("_type=Patient"), want: 400},
		{name: "POST other resource", method: "POST", path: "/$export", header: fhirBody, body: []byte(`{"resourceType":"Patient"}`), want: 400},
		{name: "bad group id", method: "GET", path: "/Group/g_1/$export", want: 400},
		{name: "PUT", method: "PUT", path: "/$export", want: 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBulkFixture(t, false, BulkOptions{Polls: -1})
			h := kickOffHeader()
			for k, v := range tt.header {
				h[k] = v
			}
			tok := f.tok
			if tt.noToken {
				tok = ""
			}
			resp, _ := f.do(tt.method, f.srv.FHIRBase()+tt.path, tok, tt.body, h)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			st := f.srv.BulkStats()
			if tt.want != http.StatusAccepted {
				if st.KickOffs != 0 || (tt.want == 400 && st.KickOffsRejected != 1) {
					t.Errorf("BulkStats = %+v after a refused kick-off", st)
				}
				return
			}
			_, body := f.do(http.MethodGet, resp.Header.Get("Content-Location"), f.tok, nil, nil)
			var m bulkManifest
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			var types []string
			for _, o := range m.Output {
				if len(types) == 0 || types[len(types)-1] != o.Type {
					types = append(types, o.Type)
				}
			}
			if strings.Join(types, ",") != strings.Join(tt.wantTypes, ",") {
				t.Errorf("manifest types %q, want %q", types, tt.wantTypes)
			}
			if want := f.srv.FHIRBase() + strings.Split(tt.path, "?")[0]; !strings.HasPrefix(m.Request, want) {
				t.Errorf("manifest request %q, want it to start with %q", m.Request, want)
			}
		})
	}
}

func TestBulkThrottleOnce(t *testing.T) {
	for _, code := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			f := newBulkFixture(t, false, BulkOptions{Polls: 1, Throttle: code, RetryAfter: 3 * time.Second})
			status := f.kickOff()
			var got []int
			for range 3 {
				resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil)
				got = append(got, resp.StatusCode)
				if resp.StatusCode != http.StatusOK && resp.Header.Get("Retry-After") == "" {
					t.Errorf("%d answer without Retry-After", resp.StatusCode)
				}
				if resp.StatusCode == code && resp.Header.Get("Retry-After") != "3" {
					t.Errorf("throttled: Retry-After %q, want \"3\"", resp.Header.Get("Retry-After"))
				}
			}
			if want := []int{code, 202, 200}; !equalInts(got, want) {
				t.Errorf("statuses %v, want %v", got, want)
			}
			if st := f.srv.BulkStats(); st.Throttled != 1 || st.Polls != 3 || st.Manifests != 1 {
				t.Errorf("BulkStats = %+v", st)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBulkDurationUsesServerClock completes an export by time, on the
// server's injected clock: no sleeping.
func TestBulkDurationUsesServerClock(t *testing.T) {
	f := newBulkFixture(t, false, BulkOptions{Duration: time.Hour, RetryAfter: 10 * time.Minute})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.srv.SetNow(func() time.Time { return now })
	f.tok = f.newToken() // valid on the new clock
	status := f.kickOff()

	resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil)
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Progress") != "0% complete" || resp.Header.Get("Retry-After") != "600" {
		t.Fatalf("first poll: status %d, X-Progress %q, Retry-After %q", resp.StatusCode, resp.Header.Get("X-Progress"), resp.Header.Get("Retry-After"))
	}
	now = now.Add(30 * time.Minute)
	f.srv.SetNow(func() time.Time { return now })
	resp, _ = f.do(http.MethodGet, status, f.tok, nil, nil)
	if want := "Sun, 01 Mar 2026 12:40:00 GMT"; resp.StatusCode != http.StatusAccepted || resp.Header.Get("Retry-After") != want || resp.Header.Get("X-Progress") != "50% complete" {
		t.Fatalf("second poll: status %d, Retry-After %q (want %q), X-Progress %q", resp.StatusCode, resp.Header.Get("Retry-After"), want, resp.Header.Get("X-Progress"))
	}
	now = now.Add(30 * time.Minute)
	f.srv.SetNow(func() time.Time { return now })
	f.tok = f.newToken() // the first one-hour token has just expired
	resp, body := f.do(http.MethodGet, status, f.tok, nil, nil)
	var m bulkManifest
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil || m.TransactionTime != "2026-03-01T12:00:00Z" {
		t.Fatalf("after an hour: status %d, transactionTime %q", resp.StatusCode, m.TransactionTime)
	}
}

// TestBulkRejectTokenAt checks the hook that revokes the token of one
// request mid-export: that request and the token are refused, a new token
// works.
func TestBulkRejectTokenAt(t *testing.T) {
	f := newBulkFixture(t, false, BulkOptions{Polls: 2, RejectTokenAt: 3})
	status := f.kickOff() // request 1
	if resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("request 2: status %d, want 202", resp.StatusCode)
	}
	for i := 3; i <= 4; i++ {
		resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("request %d with the rejected token: status %d, WWW-Authenticate %q", i, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	f.tok = f.newToken()
	got := []int{}
	for range 2 {
		resp, _ := f.do(http.MethodGet, status, f.tok, nil, nil)
		got = append(got, resp.StatusCode)
	}
	if !equalInts(got, []int{202, 200}) {
		t.Errorf("with a new token: statuses %v, want [202 200] (the export did not advance while refused)", got)
	}
	if st := f.srv.BulkStats(); st.RejectedTokens != 1 || st.Polls != 5 {
		t.Errorf("BulkStats = %+v, want 1 rejected token and 5 polls", st)
	}
}

func TestSetBulkOptionsValidates(t *testing.T) {
	srv := NewServer()
	defer srv.Close()
	tests := []struct {
		name string
		o    BulkOptions
		ok   bool
	}{
		{"zero", BulkOptions{}, true},
		{"everything", BulkOptions{Types: []string{"Encounter"}, FilesPerType: 1, ResourcesPerFile: 1, Polls: 5, RetryAfter: time.Second, Throttle: 503, Errors: 1, Deleted: 1, RejectTokenAt: 2}, true},
		{"bad type", BulkOptions{Types: []string{"patient"}}, false},
		{"type with path", BulkOptions{Types: []string{"Patient/../x"}}, false},
		{"negative files", BulkOptions{FilesPerType: -1}, false},
		{"negative duration", BulkOptions{Duration: -time.Second}, false},
		{"throttle 500", BulkOptions{Throttle: 500}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := srv.SetBulkOptions(tt.o)
			if (err == nil) != tt.ok || (err != nil && !strings.HasPrefix(err.Error(), "oauthtest: ")) {
				t.Errorf("SetBulkOptions = %v, want ok %t", err, tt.ok)
			}
		})
	}
}
