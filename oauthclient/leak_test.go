package oauthclient

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/tokencache"
)

// secretBook records every secret-bearing value seen in a test, with a label
// that failure messages print instead of the value.
type secretBook struct {
	mu   sync.Mutex
	vals map[string]string // value → label
}

func (b *secretBook) add(label string, vals ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.vals == nil {
		b.vals = map[string]string{}
	}
	for _, v := range vals {
		// Short values would match by chance; every secret made here is long.
		if len(v) >= 12 {
			b.vals[v] = label
		}
	}
}

// scan adds to leaks, under what, the label and length of each recorded
// secret found in text.
func (b *secretBook) scan(leaks map[string]map[string]bool, what, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for v, label := range b.vals {
		if strings.Contains(text, v) {
			if leaks[what] == nil {
				leaks[what] = map[string]bool{}
			}
			leaks[what][fmt.Sprintf("%s (%d bytes)", label, len(v))] = true
		}
	}
}

// reportLeaks fails t with one line per leaking output, sorted.
func reportLeaks(t *testing.T, leaks map[string]map[string]bool) {
	t.Helper()
	var lines []string
	for what, labels := range leaks {
		var ls []string
		for l := range labels {
			ls = append(ls, l)
		}
		sort.Strings(ls)
		lines = append(lines, what+" leaks: "+strings.Join(ls, ", "))
	}
	sort.Strings(lines)
	for _, l := range lines {
		t.Error(l)
	}
}

func (b *secretBook) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.vals)
}

// randSecret returns prefix followed by 32 random hex digits.
func randSecret(prefix string) string {
	p := make([]byte, 16)
	rand.Read(p)
	return prefix + hex.EncodeToString(p)
}

// leakServer is a token (and revocation) endpoint that writes down every
// credential it receives and every token it issues.
type leakServer struct {
	*httptest.Server
	book *secretBook
	mu   sync.Mutex
	n    int
	// answer handles request n (from 1); nil issues a token.
	answer func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int)
}

func newLeakServer(t *testing.T, book *secretBook, answer func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int)) *leakServer {
	ls := &leakServer{book: book, answer: answer}
	ls.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Errorf("token server: bad form: %v", err)
		}
		for _, k := range []string{"client_secret", "client_assertion", "assertion", "refresh_token", "subject_token", "actor_token", "password", "token", "code", "code_verifier"} {
			for _, v := range r.PostForm[k] {
				book.add("form "+k, v)
				if parts := strings.Split(v, "."); len(parts) == 3 {
					book.add("form "+k+" signature", parts[2])
				}
			}
		}
		if h := r.Header.Get("Authorization"); h != "" {
			book.add("Authorization header", h, strings.TrimPrefix(h, "Basic "))
			if _, pw, ok := r.BasicAuth(); ok {
				book.add("basic auth password", pw)
				if u, err := url.QueryUnescape(pw); err == nil {
					book.add("basic auth password", u)
				}
			}
		}
		ls.mu.Lock()
		ls.n++
		n := ls.n
		ls.mu.Unlock()
		if ls.answer == nil {
			ls.issue(w, 3600, false)
			return
		}
		ls.answer(ls, w, r, n)
	}))
	t.Cleanup(ls.Close)
	return ls
}

// issue answers a successful token response with fresh, recorded tokens and
// returns them.
func (ls *leakServer) issue(w http.ResponseWriter, expiresIn int, withRefresh bool) (access, refresh string) {
	access = randSecret("at-")
	ls.book.add("issued access token", access)
	m := map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": expiresIn, "scope": "system/Patient.rs"}
	if withRefresh {
		refresh = randSecret("rt-")
		ls.book.add("issued refresh token", refresh)
		m["refresh_token"] = refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
	return access, refresh
}

// TestNoSecretLeaks runs every grant and client authentication, with
// failures, against recording servers, then looks for any recorded secret in
// everything this module prints: errors, configurations, sources, client
// authentications, grants, cache entries and signers under every fmt verb,
// the library's own debug log, and our values logged as slog attributes.
// *oauth2.Token prints its secrets by design and is not formatted here.
func TestNoSecretLeaks(t *testing.T) {
	book := &secretBook{}
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	key, err := jwtassert.GenerateKey("ES384")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	recordKey(t, book, key)

	var (
		errs    []error // every error returned
		values  []any   // every value of ours to print
		entries []*tokencache.Entry
	)
	values = append(values, signer)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// source builds a TokenSource and keeps its Config, Auth and Grant for printing.
	source := func(cfg Config) *TokenSource {
		t.Helper()
		if cfg.ClientID == "" {
			cfg.ClientID = "leak-client"
		}
		cfg.Logger = logger
		if cfg.Retry == nil {
			cfg.Retry = &RetryPolicy{MaxAttempts: 3, InitialInterval: 10 * time.Millisecond, MaxInterval: 20 * time.Millisecond}
		}
		ts, err := NewTokenSource(cfg)
		if err != nil {
			t.Fatalf("NewTokenSource: %v", err)
		}
		values = append(values, cfg, &cfg, ts, &Transport{Source: ts}, ts.OAuth2())
		if cfg.Auth != nil {
			values = append(values, cfg.Auth)
		}
		if cfg.Grant != nil {
			values = append(values, cfg.Grant)
		}
		return ts
	}
	mustToken := func(ts *TokenSource) {
		t.Helper()
		if _, err := ts.Token(ctx); err != nil {
			t.Fatalf("Token: %v", err)
		}
	}
	wantError := func(ts *TokenSource) {
		t.Helper()
		_, err := ts.Token(ctx)
		if err == nil {
			t.Fatal("Token succeeded; want an error")
		}
		errs = append(errs, err)
	}

	// client_credentials with client_secret_basic, and a 401 replay through
	// the Transport: the resource server rejects the first token it sees.
	{
		secret := randSecret("cs-basic-")
		book.add("client secret (basic)", secret)
		srv := newLeakServer(t, book, nil)
		ts := source(Config{TokenURL: srv.URL, Auth: ClientSecretBasic{Secret: secret}, Scopes: []string{"system/Patient.rs"}})
		var rejectOnce sync.Once
		rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
			book.add("Authorization to resource server", r.Header.Get("Authorization"))
			rejected := false
			rejectOnce.Do(func() { rejected = true })
			if rejected {
				w.Header().Set("WWW-Authenticate", `Bearer realm="fhir", error="invalid_token", error_description="token revoked"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, `{"resourceType":"Patient"}`)
		})
		client := ts.Client(nil)
		values = append(values, client)
		resp, err := client.Get(rs.URL + "/fhir/Patient/1")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || rs.requests.Load() != 2 {
			t.Fatalf("replay after 401: status %d after %d requests, want 200 after 2", resp.StatusCode, rs.requests.Load())
		}
	}

	// client_secret_post.
	{
		secret := randSecret("cs-post-")
		book.add("client secret (post)", secret)
		srv := newLeakServer(t, book, nil)
		mustToken(source(Config{TokenURL: srv.URL, Auth: ClientSecretPost{Secret: secret}}))
	}

	// private_key_jwt.
	{
		srv := newLeakServer(t, book, nil)
		mustToken(source(Config{TokenURL: srv.URL, Auth: PrivateKeyJWT{Signer: signer}, Scopes: []string{"system/Observation.rs"}}))
	}

	// JWT bearer grant, with client_secret_post.
	{
		secret := randSecret("cs-jwtbearer-")
		book.add("client secret (jwt bearer)", secret)
		srv := newLeakServer(t, book, nil)
		mustToken(source(Config{TokenURL: srv.URL, Auth: ClientSecretPost{Secret: secret},
			Grant: JWTBearer{Signer: signer, Subject: "patient-123", Claims: map[string]any{"purpose": "treatment"}}}))
	}

	// Refresh token with rotation, persisted in a cache, then revoked.
	{
		initial := randSecret("rt-initial-")
		book.add("initial refresh token", initial)
		var mu sync.Mutex
		current := initial
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Path == "/revoke" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r.PostForm.Get("refresh_token") != current {
				writeError(w, http.StatusBadRequest, "invalid_grant")
				return
			}
			_, current = ls.issue(w, 60, true)
		})
		clock := newFakeClock()
		cache := tokencache.NewMemory()
		ts := source(Config{TokenURL: srv.URL, RevocationURL: srv.URL + "/revoke", Grant: RefreshToken{Token: initial}, Cache: cache, Now: clock.Now})
		mustToken(ts)
		clock.Advance(2 * time.Minute)
		mustToken(ts) // rotates
		e, err := cache.Load(ctx, ts.CacheKey())
		if err != nil {
			t.Fatalf("cache Load: %v", err)
		}
		entries = append(entries, e)
		if err := ts.Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}

	// Token exchange with an actor token.
	{
		subject, actor := randSecret("subject-"), randSecret("actor-")
		book.add("subject token", subject)
		book.add("actor token", actor)
		srv := newLeakServer(t, book, nil)
		mustToken(source(Config{TokenURL: srv.URL, Grant: TokenExchange{SubjectToken: subject, ActorToken: actor, Audience: []string{"https://fhir.example.org"}}}))
	}

	// Password.
	{
		password := randSecret("pw-")
		book.add("password", password)
		srv := newLeakServer(t, book, nil)
		mustToken(source(Config{TokenURL: srv.URL, Grant: Password{Username: "alice", Password: password}, Auth: ClientSecretBasic{Secret: randSecret("cs-pw-")}}))
	}

	// Failures: invalid_client (twice: the second comes from the cool-down).
	{
		secret := randSecret("cs-wrong-")
		book.add("client secret (rejected)", secret)
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			writeError(w, http.StatusUnauthorized, "invalid_client")
		})
		ts := source(Config{TokenURL: srv.URL, Auth: ClientSecretBasic{Secret: secret}})
		wantError(ts)
		wantError(ts)
	}

	// invalid_grant on a refresh token.
	{
		rt := randSecret("rt-rejected-")
		book.add("rejected refresh token", rt)
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			writeError(w, http.StatusBadRequest, "invalid_grant")
		})
		wantError(source(Config{TokenURL: srv.URL, Grant: RefreshToken{Token: rt}, Auth: ClientSecretPost{Secret: randSecret("cs-rt-")}}))
	}

	// A revocation the server refuses.
	{
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			if r.URL.Path == "/revoke" {
				writeError(w, http.StatusBadRequest, "unsupported_token_type")
				return
			}
			ls.issue(w, 3600, true)
		})
		ts := source(Config{TokenURL: srv.URL, RevocationURL: srv.URL + "/revoke", Auth: ClientSecretPost{Secret: randSecret("cs-rv-")}})
		mustToken(ts)
		if err := ts.Revoke(ctx); err == nil {
			t.Fatal("Revoke succeeded; want an error")
		} else {
			errs = append(errs, err)
		}
	}

	// 503 twice, then a token.
	{
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			if n <= 2 {
				w.Header().Set("Retry-After", "0")
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable")
				return
			}
			ls.issue(w, 3600, false)
		})
		mustToken(source(Config{TokenURL: srv.URL, Auth: ClientSecretBasic{Secret: randSecret("cs-503-")}}))
	}

	// 503 on every attempt.
	{
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "<h1>Service Unavailable</h1>")
		})
		wantError(source(Config{TokenURL: srv.URL, Auth: PrivateKeyJWT{Signer: signer}}))
	}

	// Malformed bodies that carry a token.
	for _, body := range []func(tok string) string{
		func(tok string) string { return `{"access_token":"` + tok + `","token_type":"Bea` },
		func(tok string) string { return `{"access_token":"` + tok + `","token_type":"mac"}` },
		func(tok string) string {
			return `{"access_token":"` + tok + `","token_type":"Bearer","access_token":"` + tok + `"}`
		},
		func(tok string) string {
			return `{"access_token":"` + tok + `","token_type":"Bearer","expires_in":"` + tok + `"}`
		},
		func(tok string) string { return `{"error":["` + tok + `"],"error_description":7}` },
		func(tok string) string { return `[` + `"` + tok + `"]` },
	} {
		srv := newLeakServer(t, book, func(ls *leakServer, w http.ResponseWriter, r *http.Request, n int) {
			tok := randSecret("at-malformed-")
			ls.book.add("access token in a malformed response", tok)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body(tok))
		})
		wantError(source(Config{TokenURL: srv.URL, Auth: ClientSecretPost{Secret: randSecret("cs-malformed-")}}))
	}

	// A long-lived static token.
	{
		static := randSecret("static-")
		book.add("static token", static)
		s, err := NewStatic(static)
		if err != nil {
			t.Fatal(err)
		}
		values = append(values, s, &Transport{Source: s}, s.Client(nil))
	}

	if book.len() < 40 {
		t.Fatalf("only %d secrets recorded; the flows did not run", book.len())
	}
	for _, e := range errs {
		values = append(values, e)
	}
	for _, e := range entries {
		values = append(values, e)
	}

	t.Run("fmt", func(t *testing.T) {
		leaks := map[string]map[string]bool{}
		defer reportLeaks(t, leaks)
		for _, v := range values {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
				book.scan(leaks, fmt.Sprintf("%T printed with %s", v, verb), fmt.Sprintf(verb, v))
			}
		}
		for _, e := range errs {
			book.scan(leaks, fmt.Sprintf("%T.Error()", e), e.Error())
		}
	})
	t.Run("library log", func(t *testing.T) {
		leaks := map[string]map[string]bool{}
		defer reportLeaks(t, leaks)
		logMu.Lock()
		out := logs.String()
		logMu.Unlock()
		if !strings.Contains(out, "token fetch failed") {
			t.Fatal("the failures were not logged; is Config.Logger used?")
		}
		book.scan(leaks, "debug log", out)
	})
	// Our values handed to slog as attributes: the JSON handler marshals a
	// value that is not a slog.LogValuer with encoding/json, ignoring
	// String and Format.
	t.Run("slog attributes", func(t *testing.T) {
		leaks := map[string]map[string]bool{}
		defer reportLeaks(t, leaks)
		for _, v := range values {
			for name, h := range map[string]func(io.Writer) slog.Handler{
				"JSON": func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) },
				"text": func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) },
			} {
				var b bytes.Buffer
				slog.New(h(&b)).Info("value", "v", v)
				book.scan(leaks, fmt.Sprintf("%T logged by the slog %s handler", v, name), b.String())
			}
		}
	})
	// A cache entry held by value (in a slice, a struct field) rather than
	// by pointer.
	t.Run("entry by value", func(t *testing.T) {
		leaks := map[string]map[string]bool{}
		defer reportLeaks(t, leaks)
		for _, e := range entries {
			for _, verb := range []string{"%v", "%+v", "%#v"} {
				book.scan(leaks, "tokencache.Entry value printed with "+verb, fmt.Sprintf(verb, *e))
			}
			var b bytes.Buffer
			slog.New(slog.NewJSONHandler(&b, nil)).Info("entry", "e", *e)
			book.scan(leaks, "tokencache.Entry value logged by the slog JSON handler", b.String())
		}
	})
}

// recordKey records the private key's PEM body, its lines, and its private
// scalar in the encodings a leak would show (decimal for fmt, base64url for
// a JWK "d", hex).
func recordKey(t *testing.T, book *secretBook, key any) {
	t.Helper()
	p, err := jwtassert.EncodePEM(key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	body := base64.StdEncoding.EncodeToString(blk.Bytes)
	book.add("private key PEM body", body)
	for i := 0; i+64 <= len(body); i += 64 {
		book.add("private key PEM line", body[i:i+64])
	}
	ek := key.(*ecdsa.PrivateKey)
	d, err := ek.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	book.add("private scalar", base64.RawURLEncoding.EncodeToString(d), base64.StdEncoding.EncodeToString(d), hex.EncodeToString(d))
	book.add("private scalar (decimal)", ek.D.String())
}

// lockedWriter serialises writes from concurrent loggers.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
