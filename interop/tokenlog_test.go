package interop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenRecorder stands in front of a token endpoint and records every
// exchange that passes through it: which listener (sender) it came in on,
// the grant type, a serial number for the refresh token sent and for the
// one issued, and the answer's status and error code. Tokens are numbered
// in the order the recorder first sees them; their values never leave it.
//
// Each sender gets its own listener, so a test can tell processes apart and
// wait until every connection of a killed process is closed. A request that
// reached a listener is forwarded even if its sender has died meanwhile, as
// a real server processes a request whose client went away. It is safe for
// concurrent use.
type tokenRecorder struct {
	target string // the real token endpoint
	hc     *http.Client

	mu      sync.Mutex          // guards the fields below
	serials map[[32]byte]int    // token hash → serial number
	log     []tokenExchange     // oldest first
	conns   map[string]int      // sender → connections not yet closed
	states  map[net.Conn]string // connection → its sender, until closed
}

// tokenExchange is one token request as the recorder saw it.
type tokenExchange struct {
	Sender string // the listener's name
	Grant  string // grant_type
	Sent   int    // serial of the refresh token sent; 0 if none
	Issued int    // serial of the refresh token issued; 0 if none
	Status int    // 0: the token endpoint did not answer
	Error  string // OAuth error code of the answer, if any
	Note   string // set on a marker the test added (mark), not an exchange
}

func (e tokenExchange) String() string {
	if e.Note != "" {
		return "--- " + e.Note
	}
	s := fmt.Sprintf("%s %s", e.Sender, e.Grant)
	if e.Sent != 0 {
		s += fmt.Sprintf(" sent RT#%d", e.Sent)
	}
	s += fmt.Sprintf(" → %d", e.Status)
	if e.Issued != 0 {
		s += fmt.Sprintf(" issued RT#%d", e.Issued)
	}
	if e.Error != "" {
		s += " " + e.Error
	}
	return s
}

// newTokenRecorder returns a recorder for the token endpoint tokenURL.
func newTokenRecorder(t testing.TB, tokenURL string) *tokenRecorder {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &tokenRecorder{
		target:  tokenURL,
		hc:      &http.Client{Transport: tr, Timeout: 30 * time.Second},
		serials: map[[32]byte]int{},
		conns:   map[string]int{},
		states:  map[net.Conn]string{},
	}
}

// listen starts a listener for sender and returns its token URL. It stops
// when the test ends.
func (r *tokenRecorder) listen(t testing.TB, sender string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serve(w, req, sender)
	}))
	srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		r.mu.Lock()
		defer r.mu.Unlock()
		_, known := r.states[c]
		switch {
		case st == http.StateNew && !known:
			r.states[c] = sender
			r.conns[sender]++
		case (st == http.StateClosed || st == http.StateHijacked) && known:
			delete(r.states, c)
			r.conns[sender]--
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/token"
}

// serve forwards one token request and records it.
func (r *tokenRecorder) serve(w http.ResponseWriter, req *http.Request, sender string) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return // the sender died before its request was complete
	}
	form, _ := url.ParseQuery(string(body))
	ex := tokenExchange{Sender: sender, Grant: form.Get("grant_type")}
	if rt := form.Get("refresh_token"); rt != "" {
		ex.Sent = r.serial(rt)
	}
	// Not the sender's context: a request that arrived is processed even
	// if its sender is gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), 30*time.Second)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, http.MethodPost, r.target, bytes.NewReader(body))
	if err != nil {
		r.record(ex)
		http.Error(w, "interop: recorder", http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Authorization", "Content-Type", "Accept", "DPoP"} {
		if v := req.Header.Values(h); len(v) > 0 {
			out.Header[h] = v
		}
	}
	resp, err := r.hc.Do(out)
	if err != nil {
		r.record(ex)
		http.Error(w, "interop: recorder", http.StatusBadGateway)
		return
	}
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if err != nil {
		r.record(ex)
		http.Error(w, "interop: recorder", http.StatusBadGateway)
		return
	}
	ex.Status = resp.StatusCode
	var answer struct {
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if json.Unmarshal(rb, &answer) == nil {
		ex.Error = answer.Error
		if answer.RefreshToken != "" {
			ex.Issued = r.serial(answer.RefreshToken)
		}
	}
	r.record(ex)
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

// serial returns the serial number of a token, numbering it if it is new.
func (r *tokenRecorder) serial(tok string) int {
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.serials[h]
	if !ok {
		n = len(r.serials) + 1
		r.serials[h] = n
	}
	return n
}

// serialOf returns the serial number of a token the recorder has seen, or
// 0.
func (r *tokenRecorder) serialOf(tok string) int {
	h := sha256.Sum256([]byte(tok))
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.serials[h]
}

func (r *tokenRecorder) record(ex tokenExchange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = append(r.log, ex)
}

// mark adds a note to the log, such as where a process was killed.
func (r *tokenRecorder) mark(note string) { r.record(tokenExchange{Note: note}) }

// exchanges returns a copy of the log, oldest first.
func (r *tokenRecorder) exchanges() []tokenExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tokenExchange(nil), r.log...)
}

// waitClosed waits until every connection to sender's listener is closed:
// once a killed sender's connections are closed, whatever it had sent has
// been forwarded and answered. The limit is a hang guard.
func (r *tokenRecorder) waitClosed(t testing.TB, sender string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		n := r.conns[sender]
		r.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections of %s still open after 30s", n, sender)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// redeemedTwice returns, for every refresh token serial sent more than
// once, the exchanges that sent it, in order.
func redeemedTwice(log []tokenExchange) map[int][]tokenExchange {
	by := map[int][]tokenExchange{}
	for _, ex := range log {
		if ex.Note == "" && ex.Sent != 0 {
			by[ex.Sent] = append(by[ex.Sent], ex)
		}
	}
	for n, exs := range by {
		if len(exs) < 2 {
			delete(by, n)
		}
	}
	return by
}

// formatExchanges renders a log, one exchange per line, for a failure
// message. It holds serial numbers only, never tokens.
func formatExchanges(log []tokenExchange) string {
	var b strings.Builder
	for i, ex := range log {
		fmt.Fprintf(&b, "  %3d %s\n", i+1, ex)
	}
	return b.String()
}
