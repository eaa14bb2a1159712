package oauthtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BulkOptions shapes the FHIR Bulk Data export endpoints. See
// [Server.SetBulkOptions]. The zero value gives the defaults.
type BulkOptions struct {
	// Types are the resource types exported. Optional; default Patient
	// and Observation.
	Types []string
	// FilesPerType is the number of NDJSON files of each type. Optional;
	// default 2.
	FilesPerType int
	// ResourcesPerFile is the number of resources (lines) in each file.
	// Optional; default 3.
	ResourcesPerFile int
	// Polls is the number of status requests answered 202 (in progress)
	// before the manifest. Optional; default 2; negative: the first status
	// request gets the manifest.
	Polls int
	// Duration, when set, completes an export once it has passed since the
	// kick-off by the server's clock (see SetNow), instead of counting
	// polls. Optional.
	Duration time.Duration
	// RetryAfter is the delay that in-progress and throttled answers ask
	// for, sent alternately as delay-seconds and as an HTTP-date. Optional;
	// default 1 s.
	RetryAfter time.Duration
	// Throttle, when http.StatusTooManyRequests or
	// http.StatusServiceUnavailable, answers the first status request of
	// each export with that status and a Retry-After, once. Optional.
	Throttle int
	// Errors is the number of OperationOutcome lines in the manifest's
	// error file. Optional; 0: the error list is empty.
	Errors int
	// Deleted is the number of deleted resources listed in the manifest's
	// "deleted" file (transaction Bundles with DELETE entries). Optional;
	// 0: no deleted list.
	Deleted int
	// RejectTokenAt, when n > 0, revokes the access token carried by the
	// n-th request to the kick-off, status and delete endpoints counted
	// from SetBulkOptions, so that this request is answered 401
	// invalid_token, once: a client must get a new token and repeat the
	// request. Optional.
	RejectTokenAt int
}

// BulkStats counts what the Bulk Data endpoints and the storage host have
// seen. See [Server.BulkStats].
type BulkStats struct {
	KickOffs         int // kick-off requests answered 202 Accepted
	KickOffsRejected int // kick-off requests answered 4xx after a valid token
	Polls            int // GET requests to status URLs, whatever the answer
	Throttled        int // of those, answered 429 or 503 by Throttle
	Manifests        int // of those, answered 200 with the manifest
	Deletes          int // DELETE requests to status URLs answered 202
	RejectedTokens   int // tokens revoked by RejectTokenAt
	StorageRequests  int // requests to the storage host
	// StorageWithAuthorization counts the requests to the storage host that
	// carried an Authorization header; they are answered 400.
	StorageWithAuthorization int
}

// bulkState holds the Bulk Data settings, exports and counters, and the
// storage host. Its zero value is ready to use.
type bulkState struct {
	mu       sync.Mutex // guards everything below; never held while taking Server.mu
	opts     BulkOptions
	jobs     map[string]*bulkJob
	stats    BulkStats
	requests int // kick-off, status and delete requests since SetBulkOptions
	storage  *httptest.Server
	closed   bool
}

// bulkJob is one export.
type bulkJob struct {
	id        string
	request   string // the kick-off URL
	started   time.Time
	types     []string
	opts      BulkOptions // with defaults, as at the kick-off
	progress  int         // 202 answers so far
	throttled bool
	deleted   bool
}

var (
	fhirTypeName = regexp.MustCompile(`^[A-Z][A-Za-z]{0,63}$`)
	fhirID       = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)
	bulkFileName = regexp.MustCompile(`^([A-Z][A-Za-z]*)-([0-9]+)\.ndjson$`)
)

// ndjsonFormats are the accepted values of _outputFormat.
var ndjsonFormats = []string{"application/fhir+ndjson", "application/ndjson", "ndjson"}

// withDefaults fills the unset fields of o.
func (o BulkOptions) withDefaults() BulkOptions {
	if len(o.Types) == 0 {
		o.Types = []string{"Patient", "Observation"}
	}
	o.Types = slices.Clone(o.Types)
	if o.FilesPerType == 0 {
		o.FilesPerType = 2
	}
	if o.ResourcesPerFile == 0 {
		o.ResourcesPerFile = 3
	}
	if o.Polls == 0 {
		o.Polls = 2
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = time.Second
	}
	return o
}

// SetBulkOptions replaces the settings of the Bulk Data endpoints for
// exports kicked off from now on, and restarts the count of RejectTokenAt.
func (s *Server) SetBulkOptions(o BulkOptions) error {
	for _, t := range o.Types {
		if !fhirTypeName.MatchString(t) {
			return fmt.Errorf("oauthtest: BulkOptions.Types: %q is not a resource type name", t)
		}
	}
	switch {
	case o.FilesPerType < 0, o.ResourcesPerFile < 0, o.Errors < 0, o.Deleted < 0, o.RejectTokenAt < 0:
		return errors.New("oauthtest: BulkOptions: counts must not be negative")
	case o.Duration < 0, o.RetryAfter < 0:
		return errors.New("oauthtest: BulkOptions: durations must not be negative")
	case o.Throttle != 0 && o.Throttle != http.StatusTooManyRequests && o.Throttle != http.StatusServiceUnavailable:
		return fmt.Errorf("oauthtest: BulkOptions.Throttle: %d is neither 429 nor 503", o.Throttle)
	}
	b := &s.bulk
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opts = o
	b.opts.Types = slices.Clone(o.Types)
	b.requests = 0
	return nil
}

// BulkStats returns a snapshot of the Bulk Data counters.
func (s *Server) BulkStats() BulkStats {
	s.bulk.mu.Lock()
	defer s.bulk.mu.Unlock()
	return s.bulk.stats
}

// bulkRoutes registers the Bulk Data endpoints.
func (s *Server) bulkRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /fhir/$export", s.handleKickOff)
	mux.HandleFunc("POST /fhir/$export", s.handleKickOff)
	mux.HandleFunc("GET /fhir/Group/{id}/$export", s.handleKickOff)
	mux.HandleFunc("POST /fhir/Group/{id}/$export", s.handleKickOff)
	mux.HandleFunc("GET /fhir/bulkstatus/{job}", s.handleExportStatus)
	mux.HandleFunc("DELETE /fhir/bulkstatus/{job}", s.handleExportDelete)
}

// clock reads the server's clock.
func (s *Server) clock() time.Time {
	s.mu.Lock()
	now := s.now
	s.mu.Unlock()
	return now()
}

// authorizeBulk counts a request to the kick-off, status or delete
// endpoints, applies RejectTokenAt, and checks its token as for a Patient
// search. On failure it has answered.
func (s *Server) authorizeBulk(w http.ResponseWriter, r *http.Request) bool {
	b := &s.bulk
	b.mu.Lock()
	b.requests++
	reject := b.opts.RejectTokenAt > 0 && b.requests == b.opts.RejectTokenAt
	if reject {
		b.stats.RejectedTokens++
	}
	b.mu.Unlock()
	if reject {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if strings.EqualFold(scheme, "Bearer") || strings.EqualFold(scheme, "DPoP") {
			s.RevokeAccessToken(tok)
		}
	}
	return s.authorizeResource(w, r, r.URL.Query(), 's')
}

// handleKickOff serves the system and Group kick-off requests.
func (s *Server) handleKickOff(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeBulk(w, r) {
		return
	}
	b := &s.bulk
	types, msg := s.checkKickOff(r)
	if msg != "" {
		b.mu.Lock()
		b.stats.KickOffsRejected++
		b.mu.Unlock()
		writeJSON(w, http.StatusBadRequest, fhirJSON, operationOutcome("invalid", msg))
		return
	}
	s.StorageURL() // start it before the manifest names it
	job := &bulkJob{id: randomID(12), request: s.URL + r.URL.RequestURI(), started: s.clock(), types: types}
	b.mu.Lock()
	job.opts = b.opts.withDefaults()
	if b.jobs == nil {
		b.jobs = make(map[string]*bulkJob)
	}
	b.jobs[job.id] = job
	b.stats.KickOffs++
	b.mu.Unlock()
	s.logInfo("oauthtest: export kicked off", "path", r.URL.Path)
	w.Header().Set("Content-Location", s.FHIRBase()+"/bulkstatus/"+job.id)
	w.WriteHeader(http.StatusAccepted)
}

// checkKickOff checks the headers and parameters of a kick-off request and
// returns the resource types to export, or why the request is refused.
func (s *Server) checkKickOff(r *http.Request) (types []string, msg string) {
	if strings.Contains(r.Pattern, "/Group/") && !fhirID.MatchString(r.PathValue("id")) {
		return nil, "the Group id is not a valid FHIR id"
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Accept")); err != nil || mt != fhirJSON {
		return nil, "a kick-off request needs Accept: application/fhir+json"
	}
	var async, lenient bool
	for _, v := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(v, ",") {
			switch strings.ToLower(strings.Join(strings.Fields(p), "")) {
			case "respond-async":
				async = true
			case "handling=lenient":
				lenient = true
			}
		}
	}
	if !async {
		return nil, "a kick-off request needs Prefer: respond-async"
	}
	params, msg := exportParams(r)
	if msg != "" {
		return nil, msg
	}
	s.bulk.mu.Lock()
	supported := s.bulk.opts.withDefaults().Types
	s.bulk.mu.Unlock()
	for name, vals := range params {
		for _, v := range vals {
			switch name {
			case "_outputFormat":
				if !slices.Contains(ndjsonFormats, v) {
					return nil, "_outputFormat " + strconv.Quote(v) + " is not supported"
				}
			case "_since":
				if _, err := time.Parse(time.RFC3339, v); err != nil {
					return nil, "_since is not a FHIR instant"
				}
			case "_type":
				for _, t := range strings.Split(v, ",") {
					switch t = strings.TrimSpace(t); {
					case slices.Contains(supported, t):
						if !slices.Contains(types, t) {
							types = append(types, t)
						}
					case !lenient:
						return nil, "_type " + strconv.Quote(t) + " is not exported by this server"
					}
				}
			default:
				if !lenient {
					return nil, "parameter " + strconv.Quote(name) + " is not supported (send Prefer: handling=lenient to ignore it)"
				}
			}
		}
	}
	if len(types) == 0 {
		types = supported
	}
	return types, ""
}

// exportParams returns the parameters of a kick-off request: the query,
// and for POST also those of the FHIR Parameters resource in the body.
// Values that are not strings (a patient reference) are kept as "".
func exportParams(r *http.Request) (map[string][]string, string) {
	params := r.URL.Query()
	if r.Method != http.MethodPost {
		return params, ""
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != fhirJSON && mt != "application/json") {
		return nil, "a POST kick-off needs a Parameters resource as application/fhir+json"
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil || len(body) > maxBodyBytes {
		return nil, "the request body cannot be read or is too large"
	}
	var p struct {
		ResourceType string                       `json:"resourceType"`
		Parameter    []map[string]json.RawMessage `json:"parameter"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.ResourceType != "Parameters" {
		return nil, "the request body is not a FHIR Parameters resource"
	}
	for _, m := range p.Parameter {
		var name, value string
		if json.Unmarshal(m["name"], &name) != nil || name == "" {
			return nil, "a parameter has no name"
		}
		for k, raw := range m {
			if strings.HasPrefix(k, "value") {
				_ = json.Unmarshal(raw, &value) // non-string values stay ""
			}
		}
		params[name] = append(params[name], value)
	}
	return params, ""
}

// handleExportStatus serves the status URL: 202 while in progress, a
// throttling answer once if set, then 200 with the manifest.
func (s *Server) handleExportStatus(w http.ResponseWriter, r *http.Request) {
	b := &s.bulk
	b.mu.Lock()
	b.stats.Polls++
	b.mu.Unlock()
	if !s.authorizeBulk(w, r) {
		return
	}
	now := s.clock()
	b.mu.Lock()
	job := b.jobs[r.PathValue("job")]
	if job == nil || job.deleted {
		b.mu.Unlock()
		writeJSON(w, http.StatusNotFound, fhirJSON, operationOutcome("not-found", "no such export"))
		return
	}
	o := job.opts
	status, form := http.StatusAccepted, job.progress
	switch {
	case o.Throttle != 0 && !job.throttled:
		job.throttled, status = true, o.Throttle
		b.stats.Throttled++
	case o.Duration > 0 && now.Sub(job.started) >= o.Duration, o.Duration <= 0 && job.progress >= o.Polls:
		status = http.StatusOK
		b.stats.Manifests++
	default:
		job.progress++
	}
	var manifest map[string]any
	if status == http.StatusOK {
		manifest = job.manifest(b.storage)
	}
	b.mu.Unlock()

	switch status {
	case http.StatusOK:
		writeJSON(w, status, "application/json", manifest)
		return
	case http.StatusAccepted:
		w.Header().Set("X-Progress", progressText(job.opts, form+1, now.Sub(job.started)))
	}
	// Alternate the two forms of RFC 9110 §10.2.3.
	if form%2 == 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((o.RetryAfter+time.Second-1)/time.Second), 10))
	} else {
		w.Header().Set("Retry-After", now.Add(o.RetryAfter).UTC().Format(http.TimeFormat))
	}
	if status == http.StatusAccepted {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, fhirJSON, operationOutcome("throttled", "too many status requests; retry later"))
}

// progressText is the X-Progress value of the n-th 202 answer.
func progressText(o BulkOptions, n int, elapsed time.Duration) string {
	if o.Duration > 0 {
		return fmt.Sprintf("%d%% complete", min(100*int64(elapsed)/int64(o.Duration), 99))
	}
	return fmt.Sprintf("in progress: step %d of %d", n, o.Polls+1)
}

// handleExportDelete serves DELETE of a status URL: the export and its
// files are gone.
func (s *Server) handleExportDelete(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeBulk(w, r) {
		return
	}
	b := &s.bulk
	b.mu.Lock()
	job := b.jobs[r.PathValue("job")]
	ok := job != nil && !job.deleted
	if ok {
		job.deleted = true
		b.stats.Deletes++
	}
	b.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, fhirJSON, operationOutcome("not-found", "no such export"))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
