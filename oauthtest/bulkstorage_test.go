package oauthtest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestBulkTLSStorage(t *testing.T) {
	f := newBulkFixture(t, true, BulkOptions{Polls: -1})
	status := f.kickOff()
	_, body := f.do(http.MethodGet, status, f.tok, nil, nil)
	var m bulkManifest
	if err := json.Unmarshal(body, &m); err != nil || len(m.Output) == 0 {
		t.Fatalf("manifest: %v, %d files", err, len(m.Output))
	}
	if !strings.HasPrefix(m.Output[0].URL, "https://127.0.0.1:") {
		t.Fatalf("file URL %q: want https on loopback", m.Output[0].URL)
	}
	if resp, _ := f.do(http.MethodGet, m.Output[0].URL, "", nil, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET file over TLS: status %d", resp.StatusCode)
	}
}

func TestBulkStorageURLAfterClose(t *testing.T) {
	srv := NewServer()
	if srv.StorageURL() == "" {
		t.Fatal("no storage host while running")
	}
	srv.Close()
	if u := srv.StorageURL(); u != "" {
		t.Errorf("StorageURL after Close = %q, want \"\"", u)
	}
}

// TestBulkStorageRequests checks how the storage host answers what a
// client should not send, and that it counts Authorization headers even on
// requests it would refuse anyway.
func TestBulkStorageRequests(t *testing.T) {
	f := newBulkFixture(t, false, BulkOptions{Polls: -1, FilesPerType: 1})
	status := f.kickOff()
	_, body := f.do(http.MethodGet, status, f.tok, nil, nil)
	var m bulkManifest
	if err := json.Unmarshal(body, &m); err != nil || len(m.Output) != 2 {
		t.Fatalf("manifest: %v, %d files", err, len(m.Output))
	}
	file := m.Output[0].URL
	dir := file[:strings.LastIndex(file, "/")]
	tests := []struct {
		name, method, url string
		withToken         bool
		want              int
	}{
		{"GET", http.MethodGet, file, false, 200},
		{"HEAD", http.MethodHead, file, false, 200},
		{"POST", http.MethodPost, file, false, 405},
		{"file number out of range", http.MethodGet, dir + "/Patient-2.ndjson", false, 404},
		{"no error file", http.MethodGet, dir + "/errors.ndjson", false, 404},
		{"unknown export", http.MethodGet, f.srv.StorageURL() + "/nope/Patient-1.ndjson", false, 404},
		{"token on an unknown file", http.MethodGet, dir + "/x.ndjson", true, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := ""
			if tt.withToken {
				tok = f.tok
			}
			if resp, _ := f.do(tt.method, tt.url, tok, nil, nil); resp.StatusCode != tt.want {
				t.Errorf("%s: status %d, want %d", tt.method, resp.StatusCode, tt.want)
			}
		})
	}
	if st := f.srv.BulkStats(); st.StorageRequests != len(tests) || st.StorageWithAuthorization != 1 {
		t.Errorf("BulkStats = %+v: want %d storage requests, 1 with Authorization", st, len(tests))
	}
}
