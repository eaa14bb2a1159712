package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// blockingSource is an oauth2.TokenSource whose Token says it was entered
// (on entered, if set) and waits for release.
type blockingSource struct{ entered, release chan struct{} }

func (b blockingSource) Token() (*oauth2.Token, error) {
	if b.entered != nil {
		b.entered <- struct{}{}
	}
	<-b.release
	return &oauth2.Token{AccessToken: "tok-1", TokenType: "Bearer"}, nil
}

func TestFromOAuth2(t *testing.T) {
	src := FromOAuth2(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok-7", TokenType: "Bearer"}))
	tok, err := src.Token(context.Background())
	if err != nil || tok.AccessToken != "tok-7" {
		t.Fatalf("Token: %s, %v; want token #7", serial(tok), err)
	}
	// The Transport sends it.
	var got string
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer rs.Close()
	resp, err := (&http.Client{Transport: &Transport{Source: src}}).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got != "Bearer tok-7" {
		t.Errorf("resource server got %s, want Bearer with token #7", serial(strings.TrimPrefix(got, "Bearer ")))
	}
	for _, s := range []string{fmt.Sprintf("%v", src), fmt.Sprintf("%+v", src), fmt.Sprintf("%#v", src)} {
		if strings.Contains(s, "tok-7") {
			t.Error("formatting the adapter prints its token")
		}
	}
}

func TestFromOAuth2HonoursContext(t *testing.T) {
	b := blockingSource{release: make(chan struct{})}
	defer close(b.release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FromOAuth2(b).Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	b.entered = make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := FromOAuth2(b).Token(ctx)
		errc <- err
	}()
	<-b.entered // the wrapped Token is running: cancel while it waits
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: err = %v, want context.Canceled", err)
	}
}

func TestFromOAuth2UnwrapsOwnSource(t *testing.T) {
	srv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { writeToken(w, n, 3600, nil) })
	ts := newTS(t, Config{TokenURL: srv.URL})
	if FromOAuth2(ts.OAuth2()) != Source(ts) {
		t.Error("FromOAuth2(ts.OAuth2()) is not ts")
	}
}

func TestFromOAuth2Errors(t *testing.T) {
	failing := oauth2.ReuseTokenSource(nil, tokenSourceFunc(func() (*oauth2.Token, error) { return nil, errors.New("boom") }))
	if _, err := FromOAuth2(failing).Token(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "oauthclient: ") {
		t.Errorf("err = %v, want an oauthclient error", err)
	}
	empty := tokenSourceFunc(func() (*oauth2.Token, error) { return &oauth2.Token{}, nil })
	if _, err := FromOAuth2(empty).Token(context.Background()); err == nil {
		t.Error("an empty token was accepted")
	}
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }

// formCheck records how a token request authenticated the client.
type formCheck struct {
	basic, post bool
	form        url.Values
}

func checkingServer(t *testing.T, got *formCheck, extra map[string]any) *tokenServer {
	return newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		id, secret, ok := r.BasicAuth()
		got.basic = ok && id == "client-1" && secret == "s3cret"
		got.post = r.PostForm.Get("client_id") == "client-1" && r.PostForm.Get("client_secret") == "s3cret"
		got.form = r.PostForm
		writeToken(w, n, 3600, extra)
	})
}

func TestNewFromClientCredentials(t *testing.T) {
	for _, tt := range []struct {
		name             string
		style            oauth2.AuthStyle
		wantBasic, wantP bool
	}{
		{"in header", oauth2.AuthStyleInHeader, true, false},
		{"in params", oauth2.AuthStyleInParams, false, true},
		{"auto detect", oauth2.AuthStyleAutoDetect, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got formCheck
			srv := checkingServer(t, &got, nil)
			ts, err := NewFromClientCredentials(&clientcredentials.Config{
				ClientID: "client-1", ClientSecret: "s3cret", TokenURL: srv.URL,
				Scopes: []string{"a", "b"}, EndpointParams: url.Values{"audience": {"api"}}, AuthStyle: tt.style,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ts.Close()
			if _, err := ts.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got.basic != tt.wantBasic || got.post != tt.wantP {
				t.Errorf("basic %v, post %v; want %v, %v", got.basic, got.post, tt.wantBasic, tt.wantP)
			}
			if got.form.Get("grant_type") != "client_credentials" || got.form.Get("scope") != "a b" || got.form.Get("audience") != "api" {
				t.Errorf("form: grant %q scope %q audience %q", got.form.Get("grant_type"), got.form.Get("scope"), got.form.Get("audience"))
			}
		})
	}
	if _, err := NewFromClientCredentials(nil); err == nil {
		t.Error("nil config accepted")
	}
}

func TestNewFromOAuth2Config(t *testing.T) {
	var got formCheck
	srv := checkingServer(t, &got, map[string]any{"refresh_token": "rt-2"})
	cfg := &oauth2.Config{ClientID: "client-1", ClientSecret: "s3cret", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
	// A valid token is used as is.
	ts, err := NewFromOAuth2Config(cfg, &oauth2.Token{AccessToken: "tok-0", RefreshToken: "rt-1", Expiry: time.Now().Add(time.Hour)}, "user-1")
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	tok, err := ts.Token(context.Background())
	if err != nil || tok.AccessToken != "tok-0" || srv.requests() != 0 {
		t.Fatalf("Token: %s, %v, %d requests; want token #0 without a request", serial(tok), err, srv.requests())
	}
	if ts.CacheKey() != "user-1" {
		t.Errorf("CacheKey = %q, want user-1", ts.CacheKey())
	}
	// An expired one is refreshed with the refresh token, client_secret_post.
	ts2, err := NewFromOAuth2Config(cfg, &oauth2.Token{AccessToken: "tok-0", RefreshToken: "rt-1", Expiry: time.Now().Add(-time.Minute)}, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ts2.Close()
	tok, err = ts2.Token(context.Background())
	if err != nil || tok.AccessToken != "tok-1" {
		t.Fatalf("Token: %s, %v; want token #1", serial(tok), err)
	}
	if !got.post || got.basic || got.form.Get("grant_type") != "refresh_token" || got.form.Get("refresh_token") != "rt-1" {
		t.Errorf("refresh request: post %v basic %v grant %q, refresh token sent %v", got.post, got.basic, got.form.Get("grant_type"), got.form.Get("refresh_token") == "rt-1")
	}
	for _, bad := range []*oauth2.Token{nil, {}} {
		if _, err := NewFromOAuth2Config(cfg, bad, ""); err == nil {
			t.Error("empty token accepted")
		}
	}
	if _, err := NewFromOAuth2Config(nil, &oauth2.Token{AccessToken: "x"}, ""); err == nil {
		t.Error("nil config accepted")
	}
}

// An x/oauth2 error quotes the token endpoint's whole body; a server that
// echoes the request puts the client secret there. FromOAuth2 keeps only
// the OAuth error members.
func TestFromOAuth2DropsEchoedBody(t *testing.T) {
	const secret = "adapt-secret-7c1e5a"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprintf(w, "<html>upstream failed for client_secret=%s</html>", r.PostForm.Get("client_secret"))
	}))
	defer srv.Close()
	cc := &clientcredentials.Config{ClientID: "c", ClientSecret: secret, TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}
	_, err := FromOAuth2(cc.TokenSource(context.Background())).Token(context.Background())
	if err == nil {
		t.Fatal("Token succeeded against a failing endpoint")
	}
	for _, out := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		if strings.Contains(out, secret) {
			t.Fatal("the echoed client secret shows in the error")
		}
	}
	var te *TokenError
	if !errors.As(err, &te) || te.StatusCode != http.StatusBadGateway {
		t.Fatalf("err is not a *TokenError with status 502: %T", err)
	}
	for inner := errors.Unwrap(err); inner != nil; inner = errors.Unwrap(inner) {
		if strings.Contains(inner.Error(), secret) {
			t.Fatalf("the echoed client secret shows in a wrapped %T", inner)
		}
	}
}

// callerStackSource is an oauth2.TokenSource that records whether Token
// ran on its caller's goroutine (the caller's frame is on the stack).
type callerStackSource struct{ direct bool }

func (c *callerStackSource) Token() (*oauth2.Token, error) {
	buf := make([]byte, 64<<10)
	c.direct = strings.Contains(string(buf[:runtime.Stack(buf, false)]), "TestFromOAuth2CallsDirectlyWithoutDeadline")
	return &oauth2.Token{AccessToken: "a"}, nil
}

// TestFromOAuth2CallsDirectlyWithoutDeadline: with a context that cannot
// end (context.Background, http.NewRequest's), the adapter calls Token on
// the caller's goroutine instead of starting one per call; with one that
// can end, Token runs on its own goroutine so that the caller can leave.
func TestFromOAuth2CallsDirectlyWithoutDeadline(t *testing.T) {
	src := &callerStackSource{}
	a := FromOAuth2(src)
	if _, err := a.Token(context.Background()); err != nil || !src.direct {
		t.Fatalf("Background: err %v, direct %v; want a direct call", err, src.direct)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := a.Token(ctx); err != nil || src.direct {
		t.Fatalf("cancellable: err %v, direct %v; want its own goroutine", err, src.direct)
	}
}

// errSource is an oauth2.TokenSource that fails with err.
type errSource struct{ err error }

func (e errSource) Token() (*oauth2.Token, error) { return nil, e.err }

// TestFromOAuth2WithholdsForeignErrorText: an error of another library
// (which may quote a token endpoint's answer, echoed secret included) is
// printed by its type only; errors.Is still finds it. Context errors keep
// their text.
func TestFromOAuth2WithholdsForeignErrorText(t *testing.T) {
	foreign := errors.New(`google: status 400: {"error":"invalid_grant","echo":"client_secret=s3cr3t-value"}`)
	_, err := FromOAuth2(errSource{foreign}).Token(context.Background())
	if err == nil || !errors.Is(err, foreign) {
		t.Fatalf("got %v, want an error that errors.Is finds the source's", err)
	}
	for _, verb := range []string{"%v", "%+v", "%s", "%q"} {
		if s := fmt.Sprintf(verb, err); strings.Contains(s, "s3cr3t") {
			t.Errorf("%s prints the echoed secret: %s", verb, s)
		}
	}
	if _, err := FromOAuth2(errSource{context.DeadlineExceeded}).Token(context.Background()); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("context error: %v", err)
	}
}
