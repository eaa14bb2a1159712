package oauthtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file holds the storage host of the Bulk Data endpoints (bulk.go):
// the second server that serves the exported files, the manifest that
// names them, and their content.

// StorageURL returns the base URL of the storage host, a second server on
// its own port that serves the exported NDJSON files, as a storage bucket
// would: without authentication, rejecting any request that carries an
// Authorization header. It is started on first use and closed by Close.
// It is "" after Close.
func (s *Server) StorageURL() string {
	b := &s.bulk
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.storage == nil && !b.closed {
		b.storage = httptest.NewUnstartedServer(http.HandlerFunc(s.handleStorage))
		if strings.HasPrefix(s.URL, "https://") {
			b.storage.StartTLS() // the same certificate as the server's
		} else {
			b.storage.Start()
		}
	}
	if b.storage == nil {
		return ""
	}
	return b.storage.URL
}

// close shuts the storage host down.
func (b *bulkState) close() {
	b.mu.Lock()
	st := b.storage
	b.storage, b.closed = nil, true
	b.mu.Unlock()
	if st != nil {
		st.Close()
	}
}

// manifest builds the completion manifest of j; storage is the storage
// host, bulkState.mu must be held.
func (j *bulkJob) manifest(storage *httptest.Server) map[string]any {
	base := ""
	if storage != nil {
		base = storage.URL + "/" + j.id + "/"
	}
	output := []map[string]any{}
	for _, t := range j.types {
		for n := 1; n <= j.opts.FilesPerType; n++ {
			output = append(output, map[string]any{"type": t, "url": fmt.Sprintf("%s%s-%d.ndjson", base, t, n), "count": j.opts.ResourcesPerFile})
		}
	}
	errs := []map[string]any{}
	if j.opts.Errors > 0 {
		errs = append(errs, map[string]any{"type": "OperationOutcome", "url": base + "errors.ndjson", "count": j.opts.Errors})
	}
	m := map[string]any{
		"transactionTime":     j.started.UTC().Format(time.RFC3339),
		"request":             j.request,
		"requiresAccessToken": false,
		"output":              output,
		"error":               errs,
	}
	if j.opts.Deleted > 0 {
		m["deleted"] = []map[string]any{{"type": "Bundle", "url": base + "deleted.ndjson", "count": j.opts.Deleted}}
	}
	return m
}

// handleStorage serves GET /{job}/{file} on the storage host.
func (s *Server) handleStorage(w http.ResponseWriter, r *http.Request) {
	b := &s.bulk
	b.mu.Lock()
	b.stats.StorageRequests++
	withAuth := len(r.Header.Values("Authorization")) > 0
	if withAuth {
		b.stats.StorageWithAuthorization++
	}
	var job *bulkJob
	jobID, file, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if j := b.jobs[jobID]; j != nil && !j.deleted {
		job = j
	}
	b.mu.Unlock()
	switch {
	case withAuth:
		// As a storage service answers a signed URL that also carries
		// an Authorization header.
		s.logInfo("oauthtest: storage request with an Authorization header rejected", "path", r.URL.Path)
		http.Error(w, "oauthtest storage: requests must not carry an Authorization header", http.StatusBadRequest)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "oauthtest storage: method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var body []byte
	if job != nil {
		body = job.file(file)
	}
	if body == nil {
		http.Error(w, "oauthtest storage: no such file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/fhir+ndjson")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// file returns the NDJSON content of one of j's files, or nil if there is
// no such file. j's fields read here never change after the kick-off.
func (j *bulkJob) file(name string) []byte {
	var lines []any
	switch m := bulkFileName.FindStringSubmatch(name); {
	case name == "errors.ndjson" && j.opts.Errors > 0:
		for i := 1; i <= j.opts.Errors; i++ {
			lines = append(lines, operationOutcome("processing", fmt.Sprintf("resource %d could not be exported", i)))
		}
	case name == "deleted.ndjson" && j.opts.Deleted > 0:
		for i := 1; i <= j.opts.Deleted; i++ {
			lines = append(lines, map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []map[string]any{
				{"request": map[string]string{"method": "DELETE", "url": fmt.Sprintf("Patient/deleted-%d", i)}},
			}})
		}
	case m != nil && slices.Contains(j.types, m[1]):
		n, err := strconv.Atoi(m[2])
		if err != nil || n < 1 || n > j.opts.FilesPerType {
			return nil
		}
		for i := 1; i <= j.opts.ResourcesPerFile; i++ {
			lines = append(lines, exportedResource(m[1], n, i))
		}
	default:
		return nil
	}
	var out []byte
	for _, l := range lines {
		b, _ := json.Marshal(l) // maps of strings: cannot fail
		out = append(append(out, b...), '\n')
	}
	return out
}

// exportedResource returns the i-th resource of the n-th file of a type.
func exportedResource(typ string, n, i int) map[string]any {
	id := fmt.Sprintf("%s-%d-%d", strings.ToLower(typ), n, i)
	r := map[string]any{"resourceType": typ, "id": id}
	switch typ {
	case "Patient":
		r["active"] = true
		r["name"] = []humanName{{Family: "Example", Given: []string{fmt.Sprintf("Patient %d.%d", n, i)}}}
	case "Observation":
		r["status"] = "final"
		r["code"] = map[string]string{"text": "heart rate"}
		r["subject"] = map[string]string{"reference": fmt.Sprintf("Patient/patient-%d-%d", n, i)}
		r["valueQuantity"] = map[string]any{"value": 60 + i, "unit": "/min"}
	}
	return r
}
