package oauthclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

func newSigner(t *testing.T, alg, kid string) *jwtassert.Signer {
	t.Helper()
	key, err := jwtassert.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func register(t *testing.T, srv *oauthtest.Server, c oauthtest.Client) {
	t.Helper()
	if err := srv.RegisterClient(c); err != nil {
		t.Fatal(err)
	}
}

func jwksOf(t *testing.T, s *jwtassert.Signer) []byte {
	t.Helper()
	b, err := jwtassert.JWKS(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readPatients reads the protected resource through the source's client.
func readPatients(t *testing.T, srv *oauthtest.Server, src interface {
	Client(*http.Client) *http.Client
}) {
	t.Helper()
	resp, err := src.Client(nil).Get(srv.FHIRBase() + "/Patient")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"Bundle"`) {
		t.Fatalf("GET Patient: %d", resp.StatusCode)
	}
}

func TestClientAuthMethodsAgainstOauthtest(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	scopes := []string{"system/Patient.rs"}
	tests := []struct {
		name string
		auth func(t *testing.T, id string) (ClientAuth, oauthtest.Client)
	}{
		{"client_secret_basic", func(t *testing.T, id string) (ClientAuth, oauthtest.Client) {
			return ClientSecretBasic{Secret: "b:a%s+ic"}, oauthtest.Client{ID: id, Secret: "b:a%s+ic", AuthMethod: oauthtest.AuthClientSecretBasic}
		}},
		{"client_secret_post", func(t *testing.T, id string) (ClientAuth, oauthtest.Client) {
			return ClientSecretPost{Secret: "p0st"}, oauthtest.Client{ID: id, Secret: "p0st", AuthMethod: oauthtest.AuthClientSecretPost}
		}},
		{"private_key_jwt RS384", func(t *testing.T, id string) (ClientAuth, oauthtest.Client) {
			s := newSigner(t, "RS384", "rsa-1")
			return PrivateKeyJWT{Signer: s}, oauthtest.Client{ID: id, JWKS: jwksOf(t, s), AuthMethod: oauthtest.AuthPrivateKeyJWT}
		}},
		{"private_key_jwt ES384", func(t *testing.T, id string) (ClientAuth, oauthtest.Client) {
			s := newSigner(t, "ES384", "ec-1")
			return PrivateKeyJWT{Signer: s}, oauthtest.Client{ID: id, JWKS: jwksOf(t, s), AuthMethod: oauthtest.AuthPrivateKeyJWT}
		}},
		{"private_key_jwt EdDSA", func(t *testing.T, id string) (ClientAuth, oauthtest.Client) {
			s := newSigner(t, "EdDSA", "ed-1")
			return PrivateKeyJWT{Signer: s}, oauthtest.Client{ID: id, JWKS: jwksOf(t, s), AuthMethod: oauthtest.AuthPrivateKeyJWT}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "client-" + strings.ReplaceAll(tt.name, " ", "-")
			auth, c := tt.auth(t, id)
			register(t, srv, c)
			ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: id, Auth: auth, Scopes: scopes})
			readPatients(t, srv, ts)
			// A second source gets a new token: every assertion has a fresh jti.
			ts2 := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: id, Auth: auth, Scopes: scopes})
			readPatients(t, srv, ts2)
		})
	}
}

func TestJWTBearerGrant(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	s := newSigner(t, "ES256", "jb")
	register(t, srv, oauthtest.Client{ID: "svc", JWKS: jwksOf(t, s), AuthMethod: oauthtest.AuthPrivateKeyJWT})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "svc", Auth: PrivateKeyJWT{Signer: s}, Grant: JWTBearer{Signer: s, Subject: "user-42"}})
	readPatients(t, srv, ts)
	if srv.Stats().ByGrant[GrantTypeJWTBearer] != 1 {
		t.Fatalf("stats: %+v", srv.Stats().ByGrant)
	}
	// An assertion signed by a key the server does not know is a typed invalid_grant.
	other := newSigner(t, "ES256", "jb")
	bad := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "svc", Auth: PrivateKeyJWT{Signer: s}, Grant: JWTBearer{Signer: other, Subject: "user-42"}})
	_, err := bad.Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Fatalf("got %v, want invalid_grant", err)
	}
}

func TestPasswordGrant(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.AddUser("alice", "correct horse")
	register(t, srv, oauthtest.Client{ID: "legacy", Secret: "sec", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "legacy", Auth: ClientSecretBasic{Secret: "sec"}, Grant: Password{Username: "alice", Password: "correct horse"}})
	readPatients(t, srv, ts)
	bad := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "legacy", Auth: ClientSecretBasic{Secret: "sec"}, Grant: Password{Username: "alice", Password: "wrong"}})
	_, err := bad.Token(context.Background())
	var te *TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Fatalf("got %v, want invalid_grant", err)
	}
}

func TestTokenExchangeFromAnotherSource(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	register(t, srv, oauthtest.Client{ID: "ehr-app", Secret: "a", AuthMethod: oauthtest.AuthClientSecretBasic})
	register(t, srv, oauthtest.Client{ID: "backend", Secret: "b", AuthMethod: oauthtest.AuthClientSecretBasic})
	ehr := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "ehr-app", Auth: ClientSecretBasic{Secret: "a"}})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "backend", Auth: ClientSecretBasic{Secret: "b"},
		Grant: TokenExchange{SubjectSource: ehr, Audience: []string{srv.FHIRBase()}}})
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("issued_token_type") != TokenTypeAccessToken {
		t.Fatalf("issued_token_type = %v", tok.Extra("issued_token_type"))
	}
	subj, _ := ehr.Token(context.Background())
	if subj.AccessToken == tok.AccessToken {
		t.Fatal("exchange returned the subject token")
	}
	readPatients(t, srv, ts)
}

func TestRotatingRefreshTokenUnderConcurrency(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.SetTokenLifetime(2 * time.Second)
	register(t, srv, oauthtest.Client{ID: "app", AuthMethod: oauthtest.AuthNone})
	rt, err := srv.IssueRefreshToken("app", "alice", []string{"patient/Patient.rs"})
	if err != nil {
		t.Fatal(err)
	}
	cache := tokencache.NewMemory()
	var mu sync.Mutex
	seen := map[string]int{}
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "app", Auth: NoClientAuth{}, Grant: RefreshToken{Token: rt}, Cache: cache,
		OnTokenChange: func(tok *oauth2.Token) {
			mu.Lock()
			seen[tok.RefreshToken]++
			mu.Unlock()
		}})
	client := ts.Client(nil)
	deadline := time.Now().Add(5 * time.Second) // 2.5 lifetimes
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, err := client.Get(srv.FHIRBase() + "/Patient")
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// A used token is refreshed ahead of expiry by a timer even without
	// traffic: stop the source before counting.
	ts.Close()
	mu.Lock()
	defer mu.Unlock()
	st := srv.Stats()
	if st.RefreshReuseDetected != 0 {
		t.Fatalf("refresh token reuse detected %d times", st.RefreshReuseDetected)
	}
	if st.ByGrant["refresh_token"] < 2 {
		t.Fatalf("refreshes = %d, want ≥ 2 over 2.5 lifetimes", st.ByGrant["refresh_token"])
	}
	for rt, n := range seen {
		if n != 1 || rt == "" {
			t.Fatalf("a refresh token was delivered %d times to OnTokenChange", n)
		}
	}
	if len(seen) != st.ByGrant["refresh_token"] {
		t.Fatalf("OnTokenChange saw %d refresh tokens for %d refreshes", len(seen), st.ByGrant["refresh_token"])
	}
}

func TestRevoke(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	register(t, srv, oauthtest.Client{ID: "app", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic})
	rt, _ := srv.IssueRefreshToken("app", "alice", nil)
	cache := tokencache.NewMemory()
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "app", Auth: ClientSecretBasic{Secret: "s"}, Grant: RefreshToken{Token: rt}, Cache: cache, RevocationURL: srv.RevocationURL()})
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Load(context.Background(), ts.CacheKey()); !errors.Is(err, tokencache.ErrNotFound) {
		t.Fatalf("cache after revoke: %v", err)
	}
	req, _ := http.NewRequest("GET", srv.FHIRBase()+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("access token still accepted after revoking its refresh token: %d", resp.StatusCode)
	}
	noURL := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "app", Auth: ClientSecretBasic{Secret: "s"}})
	if err := noURL.Revoke(context.Background()); !errors.Is(err, ErrNoRevocationEndpoint) {
		t.Fatalf("got %v", err)
	}
}

func TestRevokedTokenHealsWithOneRetry(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	register(t, srv, oauthtest.Client{ID: "app", Secret: "s", AuthMethod: oauthtest.AuthClientSecretPost})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "app", Auth: ClientSecretPost{Secret: "s"}})
	readPatients(t, srv, ts)
	srv.RevokeAll()
	readPatients(t, srv, ts)
	if st := srv.Stats(); st.TokenRequests != 2 || st.ResourceRejected != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// browser follows the authorization redirect to the loopback listener,
// optionally tampering with the redirect.
func browser(t *testing.T, tamper func(u *url.URL)) func(string) error {
	return func(authURL string) error {
		u, _ := url.Parse(authURL)
		redirect := u.Query().Get("redirect_uri")
		if !strings.HasPrefix(redirect, "http://127.0.0.1:") {
			t.Errorf("redirect URI %q is not on the loopback address", redirect)
		}
		go func() {
			c := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if tamper != nil {
					tamper(req.URL)
				}
				return nil
			}}
			resp, err := c.Get(authURL)
			if err == nil {
				resp.Body.Close()
			}
		}()
		return nil
	}
}

func TestLoginCodeWithPKCE(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	register(t, srv, oauthtest.Client{ID: "cli", AuthMethod: oauthtest.AuthNone, RedirectURIs: []string{"http://127.0.0.1/callback"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := LoginConfig{AuthURL: srv.AuthorizeURL(), TokenURL: srv.TokenURL(), ClientID: "cli", Scopes: []string{"openid", "offline_access", "patient/Patient.rs"}, Out: io.Discard, OpenBrowser: browser(t, nil)}
	tok, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatal("login returned no access or refresh token")
	}
	// Store it; a later source finds the refresh token in the cache.
	cache := tokencache.NewMemory()
	tsCfg := Config{TokenURL: srv.TokenURL(), ClientID: "cli", Auth: NoClientAuth{}, Grant: RefreshToken{}, Cache: cache, CacheKey: "login-user-1"}
	first := newTS(t, tsCfg)
	if err := first.Seed(ctx, tok); err != nil {
		t.Fatal(err)
	}
	later := newTS(t, tsCfg)
	later.Invalidate(tok)
	readPatients(t, srv, later)

	cfg.OpenBrowser = browser(t, func(u *url.URL) {
		q := u.Query()
		q.Set("state", "forged")
		u.RawQuery = q.Encode()
	})
	if _, err := Login(ctx, cfg); !errors.Is(err, ErrStateMismatch) {
		t.Fatalf("forged state: got %v, want ErrStateMismatch", err)
	}
	cfg.OpenBrowser = nil
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	if _, err := Login(short, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no browser: got %v", err)
	}
}

// TestRevokeErrorText: a refused revocation reads "oauthclient: revoke: "
// and the server's answer, once prefixed and without naming the token
// endpoint, and is still a *TokenError.
func TestRevokeErrorText(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	register(t, srv, oauthtest.Client{ID: "app", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "app", Auth: ClientSecretBasic{Secret: "s"}, RevocationURL: srv.RevocationURL()})
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv.RegisterClient(oauthtest.Client{ID: "app", Secret: "changed", AuthMethod: oauthtest.AuthClientSecretBasic})
	err := ts.Revoke(context.Background())
	var te *TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_client" {
		t.Fatalf("Revoke with a changed secret: %v, want a *TokenError invalid_client", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "oauthclient: revoke: status 401: invalid_client") || strings.Count(msg, "oauthclient:") != 1 || strings.Contains(msg, "token endpoint") {
		t.Fatalf("error text %q", msg)
	}
}

// TestRevokeAccepts204: a revocation endpoint that answers 204 No Content
// (as some do instead of RFC 7009's 200) revoked the token: Revoke
// succeeds and forgets it.
func TestRevokeAccepts204(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	var revoked atomic.Int64
	rev := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		revoked.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rev.Close()
	ts := newTS(t, Config{TokenURL: srv.URL, RevocationURL: rev.URL})
	if _, err := ts.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ts.Revoke(context.Background()); err != nil || revoked.Load() != 1 {
		t.Fatalf("Revoke against a 204: %v (%d revocation requests)", err, revoked.Load())
	}
	if tok, err := ts.Token(context.Background()); err != nil || serial(tok) != "token #2" {
		t.Fatalf("after Revoke: %s %v, want a new token", serial(tok), err)
	}
}
