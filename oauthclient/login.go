package oauthclient

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// LoginConfig configures Login: the authorization code grant with PKCE
// (RFC 7636, S256) for native apps and tools (RFC 8252), through a
// redirect listener on the loopback interface.
type LoginConfig struct {
	// AuthURL is the authorization endpoint. Required.
	AuthURL string
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID is the client identifier. Required.
	ClientID string
	// Auth authenticates a confidential client at the token endpoint.
	// Optional; default NoClientAuth (a public native client).
	Auth ClientAuth
	// Scopes requested. Optional.
	Scopes []string
	// AuthParams are extra authorization request parameters (for SMART,
	// "aud" = the FHIR base URL). Optional.
	AuthParams url.Values
	// Port of the loopback listener on 127.0.0.1. Optional; default a
	// random free port (servers match loopback redirect URIs on any port).
	Port int
	// RedirectPath is the path of the redirect URI. Optional; default "/callback".
	RedirectPath string
	// OpenBrowser opens the authorization URL. Optional; when nil or when
	// it fails, the URL is only printed to Out.
	OpenBrowser func(authURL string) error
	// Out receives the instructions and the URL. Optional; default os.Stderr.
	Out io.Writer
	// HTTPClient is used for the token request. Optional.
	HTTPClient *http.Client
	// InsecureAllowHTTP allows http:// endpoints to non-loopback hosts.
	// It MUST NOT be used outside tests on isolated networks.
	InsecureAllowHTTP bool
	// DPoPKey, when set, binds the login to a DPoP key (RFC 9449): the
	// authorization request carries its thumbprint (dpop_jkt, §10) and the
	// code exchange a proof, so the tokens are bound to it. Use the same key
	// as Config.DPoPKey of the source the token is seeded into. Optional.
	DPoPKey crypto.Signer
}

// String describes c without secrets: no credentials, URLs without their
// query, AuthParams by name only. LoginConfig has value receivers for its
// formatting methods so that a value redacts as well as a pointer.
func (c LoginConfig) String() string {
	return fmt.Sprintf("oauthclient.LoginConfig{AuthURL:%q TokenURL:%q ClientID:%q Auth:%T Scopes:%q AuthParams:%v}",
		redactURL(c.AuthURL), redactURL(c.TokenURL), c.ClientID, c.Auth, c.Scopes, names(c.AuthParams))
}

// GoString describes c without secrets.
func (c LoginConfig) GoString() string { return c.String() }

// Format prints the redacted form for every fmt verb.
func (c LoginConfig) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue prints the redacted form in slog output.
func (c LoginConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// LoginError is an error the authorization server sent to the redirect
// URI (RFC 6749 §4.1.2.1), such as access_denied.
type LoginError struct {
	ErrorCode        string
	ErrorDescription string
}

func (e *LoginError) Error() string {
	if e.ErrorDescription != "" {
		return fmt.Sprintf("oauthclient: login: %s (%s)", e.ErrorCode, e.ErrorDescription)
	}
	return "oauthclient: login: " + e.ErrorCode
}

// ErrStateMismatch: the redirect carried a state other than the one sent.
// The login is aborted: the redirect may be forged (CSRF).
var ErrStateMismatch = errors.New("oauthclient: login: state mismatch; redirect rejected")

// Login runs the authorization code + PKCE flow: it listens on
// 127.0.0.1, prints (and opens, if it can) the authorization URL, waits for
// the redirect or ctx, checks state, and exchanges the code for a token
// that normally carries a refresh token, ready for TokenSource.Seed with a
// RefreshToken grant and a persistent cache.
func Login(ctx context.Context, cfg LoginConfig) (*oauth2.Token, error) {
	if cfg.AuthURL == "" || cfg.TokenURL == "" || cfg.ClientID == "" {
		return nil, errors.New("oauthclient: login: AuthURL, TokenURL and ClientID are required")
	}
	for _, u := range []string{cfg.AuthURL, cfg.TokenURL} {
		if err := checkURL(u, cfg.InsecureAllowHTTP); err != nil {
			return nil, fieldError("LoginConfig", err)
		}
	}
	if cfg.Auth == nil {
		cfg.Auth = NoClientAuth{}
	}
	if cfg.RedirectPath == "" {
		cfg.RedirectPath = "/callback"
	}
	if cfg.Out == nil {
		cfg.Out = os.Stderr
	}
	prover, err := newDPoPProver(cfg.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: login: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)))
	if err != nil {
		return nil, fmt.Errorf("oauthclient: login: listen on loopback: %w", err)
	}
	defer ln.Close()
	redirectURI := "http://" + ln.Addr().String() + cfg.RedirectPath
	state, verifier := randomString(32), randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {cfg.ClientID},
		"redirect_uri":          {redirectURI},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	if len(cfg.Scopes) > 0 {
		q.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	if prover != nil {
		q.Set("dpop_jkt", prover.jkt)
	}
	for k, vs := range cfg.AuthParams {
		q[k] = vs
	}
	authURL := cfg.AuthURL
	if strings.Contains(authURL, "?") {
		authURL += "&" + q.Encode()
	} else {
		authURL += "?" + q.Encode()
	}

	type result struct {
		code string
		err  error
	}
	results := make(chan result, 1)
	mux := http.NewServeMux()
	mux.HandleFunc(cfg.RedirectPath, func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query()
		var res result
		switch {
		case subtle.ConstantTimeCompare([]byte(p.Get("state")), []byte(state)) != 1:
			res.err = ErrStateMismatch
			http.Error(w, "state mismatch: this login was not started here", http.StatusBadRequest)
		case p.Get("error") != "":
			res.err = &LoginError{ErrorCode: tokenendpoint.Printable(p.Get("error"), 64), ErrorDescription: tokenendpoint.Printable(p.Get("error_description"), 256)}
			http.Error(w, "login failed: "+res.err.Error(), http.StatusBadRequest)
		case p.Get("code") == "":
			res.err = errors.New("oauthclient: login: redirect without code")
			http.Error(w, "no code in redirect", http.StatusBadRequest)
		default:
			res.code = p.Get("code")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "Login complete. You can close this window.\n")
		}
		// The browser gets its page before Login goes on (and may return
		// and stop the listener).
		http.NewResponseController(w).Flush()
		select {
		case results <- res:
		default:
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer func() {
		// Let a redirect being answered finish, then stop listening.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}()

	fmt.Fprintf(cfg.Out, "Open this URL in a browser to log in:\n\n  %s\n\n", authURL)
	if cfg.OpenBrowser != nil {
		if err := cfg.OpenBrowser(authURL); err != nil {
			fmt.Fprintln(cfg.Out, "(could not open a browser; open the URL yourself)")
		}
	}
	var res result
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("oauthclient: login: %w", ctx.Err())
	case res = <-results:
	}
	if res.err != nil {
		return nil, res.err
	}

	// build makes the code exchange request; a use_dpop_nonce answer is
	// retried once with a request made anew (a fresh client assertion).
	build := func() (*tokenendpoint.Request, error) {
		form := url.Values{
			"grant_type":    {"authorization_code"},
			"code":          {res.code},
			"redirect_uri":  {redirectURI},
			"code_verifier": {verifier},
		}
		ar := &AuthRequest{ClientID: cfg.ClientID, TokenURL: cfg.TokenURL, Form: form, Header: http.Header{}, Now: time.Now()}
		if err := cfg.Auth.Apply(ar); err != nil {
			return nil, err
		}
		if !form.Has("client_id") && ar.Header.Get("Authorization") == "" {
			form.Set("client_id", cfg.ClientID)
		}
		return &tokenendpoint.Request{URL: cfg.TokenURL, Form: form, Header: ar.Header}, nil
	}
	req, err := build()
	if err != nil {
		return nil, err
	}
	issued := time.Now()
	raw, err := postToken(ctx, tokenHTTPClient(cfg.HTTPClient, cfg.Auth), prover, req, build, time.Now)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: login: exchange code: %w", tokenError(err))
	}
	return handedOut(raw, issued, prover), nil
}

// randomString returns n random bytes, base64url-encoded.
func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
