package leakproof_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// The failure modes of the hostile server. Each echoes every credential
// the request carried into every text the client might quote.
const (
	modeJSON400     = "json400"     // 400 with RFC 6749 §5.2 error members
	modeEcho401     = "echo401"     // 401 with WWW-Authenticate and a JSON error
	modeHTML500     = "html500"     // 500 with an HTML page
	modeRedirect302 = "redirect302" // 302 to a dead URL holding the credentials
	modeOK200       = "ok200"       // 200 with the credentials in unexpected members
	modeRotate      = "rotate"      // each request the next of the above
)

// modes lists the failure modes every flow is run against.
var modes = []string{modeJSON400, modeEcho401, modeHTML500, modeRedirect302, modeOK200, modeRotate}

// rotation is the order of modeRotate.
var rotation = []string{modeJSON400, modeEcho401, modeHTML500, modeRedirect302, modeOK200}

// credentialParams are the form and query members that carry secrets. The
// server records their values in the book, so that secrets the client
// makes itself (signed assertions, the PKCE verifier) are checked too.
var credentialParams = []string{
	"client_secret", "client_assertion", "assertion", "refresh_token", "subject_token",
	"actor_token", "password", "code", "code_verifier", "token", "subscription-key",
}

// hostile is an httptest server that echoes the credentials it receives.
type hostile struct {
	*httptest.Server
	book  *secretBook
	dead  string       // an http URL on which nothing listens
	count atomic.Int64 // requests in modeRotate
	hits  atomic.Int64 // all requests
}

// newHostile starts a hostile server on loopback that records what it
// sees in book.
func newHostile(t *testing.T, book *secretBook) *hostile {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	h := &hostile{book: book, dead: dead}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.Close)
	return h
}

// echo collects the credentials of r (and records them in the book): the
// credential members of the form and the query, the Authorization header
// and its decoded Basic parts, the DPoP header and every other header
// value a client may have added, such as an API gateway key.
func (h *hostile) echo(r *http.Request) string {
	if err := r.ParseForm(); err != nil {
		return "unparsable request"
	}
	var vals []string
	for name, vs := range r.Form {
		for _, v := range vs {
			vals = append(vals, v)
			if slices.Contains(credentialParams, name) {
				h.book.add(name+" (as sent)", v)
			}
		}
	}
	if a := r.Header.Get("Authorization"); a != "" {
		h.book.add("Authorization header (as sent)", a)
		if scheme, rest, ok := strings.Cut(a, " "); ok {
			h.book.add("Authorization credentials (as sent)", rest)
			if strings.EqualFold(scheme, "Basic") {
				if dec, err := base64.StdEncoding.DecodeString(rest); err == nil {
					if _, pw, ok := strings.Cut(string(dec), ":"); ok {
						vals = append(vals, pw)
						if p, err := url.QueryUnescape(pw); err == nil {
							vals = append(vals, p)
						}
					}
				}
			}
		}
	}
	if d := r.Header.Get("DPoP"); d != "" {
		h.book.add("DPoP proof (as sent)", d)
	}
	for name, vs := range r.Header {
		switch name {
		case "Accept", "Accept-Encoding", "Content-Type", "Content-Length", "User-Agent":
			continue
		}
		vals = append(vals, vs...)
	}
	return strings.Join(vals, " ")
}

// mode returns the failure mode named by a segment of the request path.
func (h *hostile) mode(r *http.Request) string {
	for _, seg := range strings.Split(r.URL.Path, "/") {
		if seg == modeRotate {
			return rotation[int(h.count.Add(1)-1)%len(rotation)]
		}
		if slices.Contains(rotation, seg) {
			return seg
		}
	}
	return modeJSON400
}

func (h *hostile) serve(w http.ResponseWriter, r *http.Request) {
	h.hits.Add(1)
	e := h.echo(r)
	mode := h.mode(r)
	w.Header().Set("X-Echo", e)
	w.Header().Set("Cache-Control", "no-store")
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/resource/"):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, e))
		http.Error(w, "rejected: "+e, http.StatusUnauthorized)
		return
	case mode == modeOK200 && strings.Contains(p, "/.well-known/"):
		h.serveDocument(w, r, e)
		return
	}
	switch mode {
	case modeJSON400:
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":             "invalid_request",
			"error_description": e,
			"error_uri":         "https://h.example/e?d=" + url.QueryEscape(e),
		})
	case modeEcho401:
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Basic realm=%q, error="invalid_client", error_description=%q`, e, e))
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": e, "error_description": e})
	case modeHTML500:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "<html><body><h1>Internal Server Error</h1><pre>%s</pre></body></html>", html.EscapeString(e))
	case modeRedirect302:
		w.Header().Set("Location", h.dead+"/cb?leak="+url.QueryEscape(e))
		w.WriteHeader(http.StatusFound)
		fmt.Fprintf(w, "moved: %s", e)
	case modeOK200:
		h.serveOK(w, r, e)
	}
}

// serveOK answers a token or revocation request with success, with the
// credentials in members no client expects. Issued tokens are recorded.
func (h *hostile) serveOK(w http.ResponseWriter, r *http.Request, e string) {
	at, rt := newSecret("at"), newSecret("rt")
	h.book.add("access token (issued)", at)
	h.book.add("refresh token (issued)", rt)
	w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error_description=%q`, e))
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":      at,
		"token_type":        "Bearer",
		"expires_in":        3600,
		"refresh_token":     rt,
		"error_description": e,
		"message":           e,
		"x_echo":            []string{e},
	})
}

// serveDocument answers discovery with a document whose issuer and
// endpoints carry the credentials.
func (h *hostile) serveDocument(w http.ResponseWriter, r *http.Request, e string) {
	q := url.QueryEscape(e)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                 "https://h.example/" + q,
		"token_endpoint":         "http://h.example/token?leak=" + q,
		"authorization_endpoint": "http://h.example/authorize?leak=" + q,
		"message":                e,
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// lockedBuffer is a bytes.Buffer safe for concurrent writes (background
// refreshes log from their own goroutines).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
