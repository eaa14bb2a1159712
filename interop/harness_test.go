package interop

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/testenv"
)

// Grant type and token type URIs used by the interop server.
const (
	grantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	tokenTypeAccess    = "urn:ietf:params:oauth:token-type:access_token"
)

// callbackURL is the loopback redirect URI sent in authorization requests.
// The client registers http://127.0.0.1/callback; oidc-provider matches any
// port for native clients (RFC 8252 §7.3). Nothing listens there: the test
// stops at the redirect and reads the code from its Location header.
const callbackURL = "http://127.0.0.1:49152/callback"

// readyTimeout bounds the wait for the server's READY line; it only protects
// against a hung start, it is not a performance assertion.
const readyTimeout = 60 * time.Second

// ProviderOptions configures one interop server. The zero value is usable.
type ProviderOptions struct {
	// AccessTokenTTL is the lifetime of access tokens issued by the
	// authorization code, refresh token, jwt-bearer and token-exchange grants.
	// Whole seconds. Optional: 0 means 300 s.
	AccessTokenTTL time.Duration
	// ClientCredentialsTTL is the lifetime of client_credentials tokens.
	// Optional: 0 means AccessTokenTTL.
	ClientCredentialsTTL time.Duration
	// RefreshTokenTTL is the lifetime of refresh tokens. Optional: 0 means 1 h.
	RefreshTokenTTL time.Duration
}

// Client is one registration at the interop server. Secret and KeyPEM are
// secrets: never print them.
type Client struct {
	ID     string
	Secret string // for client_secret_basic/post; "" for key-based and public clients
	KeyPEM []byte // PKCS #8 private key for private_key_jwt or jwt-bearer assertions
	KeyID  string
	Alg    string // JWS algorithm of KeyPEM
}

// Provider is a running interop server. Its methods are safe for concurrent
// use.
type Provider struct {
	Issuer           string
	TokenURL         string
	AuthorizationURL string
	RevocationURL    string
	IntrospectionURL string
	JWKSURL          string
	FHIRBase         string

	Basic     Client // client_credentials, client_secret_basic
	Post      Client // client_credentials, client_secret_post
	RS384     Client // client_credentials, private_key_jwt with an RS384 key
	ES384     Client // client_credentials, private_key_jwt with an ES384 key
	App       Client // native confidential app: authorization_code+PKCE, refresh_token; client_secret_basic
	Public    Client // native public app: authorization_code+PKCE, refresh_token; no client authentication
	JWTBearer Client // RFC 7523 jwt-bearer grant (RS384 assertions), client_secret_basic
	Exchange  Client // RFC 8693 token exchange and client_credentials, client_secret_basic

	http    *http.Client
	clients map[string]Client
}

// Stats mirrors the counters served at /test/stats.
type Stats struct {
	TokenRequests          int            `json:"token_requests"`
	TokenRequestsByGrant   map[string]int `json:"token_requests_by_grant"`
	TokenRequestsByClient  map[string]int `json:"token_requests_by_client"`
	TokenResponsesByStatus map[string]int `json:"token_responses_by_status"`
	TokenErrors            int            `json:"token_errors"`
	TokenErrorsByCode      map[string]int `json:"token_errors_by_code"`
	InjectedFailures       int            `json:"injected_failures"`
	GrantSuccesses         int            `json:"grant_successes"`
	RefreshTokenReuse      int            `json:"refresh_token_reuse"`
	RefreshTokensConsumed  int            `json:"refresh_tokens_consumed"`
	GrantsRevoked          int            `json:"grants_revoked"`
	ServerErrors           int            `json:"server_errors"`
	ResourceRequests       int            `json:"resource_requests"`
	ResourceUnauthorized   int            `json:"resource_unauthorized"`
	RevocationRequests     int            `json:"revocation_requests"`
}

// providerConfig is the JSON file read by provider/server.mjs.
type providerConfig struct {
	AccessTokenTTL       int              `json:"access_token_ttl"`
	ClientCredentialsTTL int              `json:"client_credentials_ttl,omitempty"`
	RefreshTokenTTL      int              `json:"refresh_token_ttl"`
	Clients              []map[string]any `json:"clients"`
}

// readyInfo is the JSON after "READY " on the server's stdout.
type readyInfo struct {
	Issuer                string `json:"issuer"`
	TokenEndpoint         string `json:"token_endpoint"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	RevocationEndpoint    string `json:"revocation_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
	JWKSURI               string `json:"jwks_uri"`
	FHIRBase              string `json:"fhir_base"`
	MTLSBase              string `json:"mtls_base"` // https base URL ("" without TLS)
}

// requireProviderDeps returns the node binary and the server script, or skips
// (fails under CI=true) when they are not installed.
func requireProviderDeps(t testing.TB) (node, script string) {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		testenv.SkipOrFailInCI(t, "interop: %s; run: npm ci --prefix interop/provider", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found in PATH")
	}
	script, err = filepath.Abs(filepath.Join("provider", "server.mjs"))
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	if _, err := os.Stat(filepath.Join("provider", "node_modules", "oidc-provider", "package.json")); err != nil {
		missing("oidc-provider is not installed")
	}
	return node, script
}

// startProvider starts an interop server for the test and stops it when the
// test ends.
func startProvider(t testing.TB, opts ProviderOptions) *Provider {
	t.Helper()
	node, script := requireProviderDeps(t)

	p := &Provider{
		http:    &http.Client{Timeout: 30 * time.Second},
		clients: map[string]Client{},
	}
	p.Basic = Client{ID: "cc-basic", Secret: randomSecret(t)}
	p.Post = Client{ID: "cc-post", Secret: randomSecret(t)}
	keys := sharedKeys(t)
	p.RS384 = Client{ID: "cc-jwt-rs384", KeyID: "rs384-" + randomHex(t, 4), Alg: "RS384", KeyPEM: keys.rs384}
	p.ES384 = Client{ID: "cc-jwt-es384", KeyID: "es384-" + randomHex(t, 4), Alg: "ES384", KeyPEM: keys.es384}
	p.App = Client{ID: "app-confidential", Secret: randomSecret(t)}
	p.Public = Client{ID: "app-public"}
	p.JWTBearer = Client{ID: "jwt-bearer", Secret: randomSecret(t), KeyID: "jb-" + randomHex(t, 4), Alg: "RS384", KeyPEM: keys.jwtBearer}
	p.Exchange = Client{ID: "token-exchange", Secret: randomSecret(t)}

	jwksOf := func(c Client) json.RawMessage {
		t.Helper()
		b, err := publicJWKS(c.KeyPEM, c.KeyID, c.Alg)
		if err != nil {
			t.Fatalf("interop: build JWKS for %s: %v", c.ID, err)
		}
		return b
	}
	none := []string{}
	loopback := []string{"http://127.0.0.1/callback"}
	clients := []map[string]any{
		{
			"client_id": p.Basic.ID, "client_secret": p.Basic.Secret,
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{"client_credentials"}, "response_types": none, "redirect_uris": none,
		},
		{
			"client_id": p.Post.ID, "client_secret": p.Post.Secret,
			"token_endpoint_auth_method": "client_secret_post",
			"grant_types":                []string{"client_credentials"}, "response_types": none, "redirect_uris": none,
		},
		{
			"client_id": p.RS384.ID, "jwks": jwksOf(p.RS384),
			"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "RS384",
			"grant_types": []string{"client_credentials"}, "response_types": none, "redirect_uris": none,
		},
		{
			"client_id": p.ES384.ID, "jwks": jwksOf(p.ES384),
			"token_endpoint_auth_method": "private_key_jwt", "token_endpoint_auth_signing_alg": "ES384",
			"grant_types": []string{"client_credentials"}, "response_types": none, "redirect_uris": none,
		},
		{
			"client_id": p.App.ID, "client_secret": p.App.Secret, "application_type": "native",
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"redirect_uris": loopback,
		},
		{
			"client_id": p.Public.ID, "application_type": "native",
			"token_endpoint_auth_method": "none",
			"grant_types":                []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
			"redirect_uris": loopback,
		},
		{
			"client_id": p.JWTBearer.ID, "client_secret": p.JWTBearer.Secret, "jwks": jwksOf(p.JWTBearer),
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{grantJWTBearer, "client_credentials"}, "response_types": none, "redirect_uris": none,
		},
		{
			"client_id": p.Exchange.ID, "client_secret": p.Exchange.Secret,
			"token_endpoint_auth_method": "client_secret_basic",
			"grant_types":                []string{grantTokenExchange, "client_credentials"}, "response_types": none, "redirect_uris": none,
		},
	}
	for _, c := range []Client{p.Basic, p.Post, p.RS384, p.ES384, p.App, p.Public, p.JWTBearer, p.Exchange} {
		p.clients[c.ID] = c
	}

	cfg := providerConfig{
		AccessTokenTTL:       seconds(opts.AccessTokenTTL, 300),
		ClientCredentialsTTL: seconds(opts.ClientCredentialsTTL, 0),
		RefreshTokenTTL:      seconds(opts.RefreshTokenTTL, 3600),
		Clients:              clients,
	}
	info := runProviderProcess(t, node, script, cfg)
	if info.Issuer == "" || info.TokenEndpoint == "" || info.FHIRBase == "" {
		t.Fatalf("interop: incomplete READY line")
	}
	p.Issuer = info.Issuer
	p.TokenURL = info.TokenEndpoint
	p.AuthorizationURL = info.AuthorizationEndpoint
	p.RevocationURL = info.RevocationEndpoint
	p.IntrospectionURL = info.IntrospectionEndpoint
	p.JWKSURL = info.JWKSURI
	p.FHIRBase = info.FHIRBase
	return p
}

// runProviderProcess writes cfg as the server's config file, starts
// provider/server.mjs with node, waits for its READY line and stops it
// (closing its stdin) when the test ends.
func runProviderProcess(t testing.TB, node, script string, cfg any) readyInfo {
	t.Helper()
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("interop: encode config: %v", err)
	}
	cfgPath := filepath.Join(t.TempDir(), "provider.json")
	if err := os.WriteFile(cfgPath, cfgJSON, 0o600); err != nil {
		t.Fatalf("interop: write config: %v", err)
	}

	cmd := exec.Command(node, script, cfgPath)
	cmd.Dir = filepath.Dir(script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatalf("interop: stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("interop: stdout pipe: %v", err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("interop: start node: %v", err)
	}

	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = stdin.Close() // the server exits when its stdin closes
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("interop server stderr:\n%s", stderr.String())
		}
	})

	ready := make(chan readyInfo, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.HasPrefix(line, "READY ") {
				var info readyInfo
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "READY ")), &info) == nil {
					ready <- info
					sent = true
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		_ = cmd.Wait()
		close(exited)
	}()

	var info readyInfo
	select {
	case info = <-ready:
	case <-exited:
		t.Fatalf("interop: server exited before it was ready:\n%s", stderr.String())
	case <-time.After(readyTimeout):
		t.Fatalf("interop: server not ready after %v:\n%s", readyTimeout, stderr.String())
	}
	return info
}

// Client returns the registration with the given ID.
func (p *Provider) Client(t testing.TB, id string) Client {
	t.Helper()
	c, ok := p.clients[id]
	if !ok {
		t.Fatalf("interop: unknown client %q", id)
	}
	return c
}

// Stats returns the server's counters.
func (p *Provider) Stats(t testing.TB) Stats {
	t.Helper()
	var s Stats
	p.doJSON(t, http.MethodGet, "/test/stats", nil, &s)
	return s
}

// ResetStats zeroes the server's counters and cancels pending failures.
func (p *Provider) ResetStats(t testing.TB) {
	t.Helper()
	p.doJSON(t, http.MethodPost, "/test/reset", map[string]any{}, nil)
}

// Fail makes the next n token requests answer status (with a Retry-After of
// retryAfter seconds when retryAfter > 0) before they reach oidc-provider.
func (p *Provider) Fail(t testing.TB, n, status, retryAfter int) {
	t.Helper()
	p.doJSON(t, http.MethodPost, "/test/fail", map[string]any{
		"count": n, "status": status, "retry_after": retryAfter,
	}, nil)
}

// RevokeToken deletes an access token at the server at once, so the next
// resource request with it answers 401 invalid_token. It reports whether the
// token was found.
func (p *Provider) RevokeToken(t testing.TB, token string) bool {
	t.Helper()
	var out struct {
		Revoked bool `json:"revoked"`
	}
	p.doJSON(t, http.MethodPost, "/test/revoke", map[string]any{"token": token}, &out)
	return out.Revoked
}

// doJSON calls a /test/ control endpoint.
func (p *Provider) doJSON(t testing.TB, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("interop: encode %s: %v", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.Issuer+path, body)
	if err != nil {
		t.Fatalf("interop: %s: %v", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("interop: %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("interop: %s: status %d", path, resp.StatusCode)
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(out); err != nil {
			t.Fatalf("interop: decode %s: %v", path, err)
		}
	}
}

// TokenResponse is a successful token endpoint response.
type TokenResponse struct {
	AccessToken     string `json:"access_token"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int    `json:"expires_in"`
	RefreshToken    string `json:"refresh_token"`
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type"`
}

// tokenError is an RFC 6749 §5.2 error response with its HTTP status.
type tokenError struct {
	Status      int
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (e *tokenError) Error() string {
	return fmt.Sprintf("interop: token endpoint: status %d, error %q (%s)", e.Status, e.Code, e.Description)
}

// postToken sends a token request with client_secret_basic when c has a
// secret, or client_id in the form otherwise. It uses net/http only.
// A non-2xx answer returns a *tokenError.
func (p *Provider) postToken(ctx context.Context, c Client, form url.Values) (*TokenResponse, error) {
	form = cloneValues(form)
	if c.Secret == "" {
		form.Set("client_id", c.ID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if c.Secret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		te := &tokenError{Status: resp.StatusCode}
		_ = json.Unmarshal(b, te)
		return nil, te
	}
	var tr TokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("interop: decode token response: %w", err)
	}
	return &tr, nil
}

// getPatient reads /fhir/Patient with a bearer token using net/http only.
func (p *Provider) getPatient(t testing.TB, accessToken string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.FHIRBase+"/Patient", nil)
	if err != nil {
		t.Fatalf("interop: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatalf("interop: GET /fhir/Patient: %v", err)
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("interop: random: %v", err)
	}
	return b
}

func randomHex(t testing.TB, n int) string { return hex.EncodeToString(randomBytes(t, n)) }

func randomSecret(t testing.TB) string { return randomHex(t, 24) }

func seconds(d time.Duration, dflt int) int {
	if d <= 0 {
		return dflt
	}
	s := int(d / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// fingerprint identifies a secret in test output without revealing it.
// Equal secrets have equal fingerprints, so workers print it to show which
// token they got.
func fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("len=%d sha256=%x", len(secret), sum[:8])
}

// assertNoSecret stops the test if the text of err, in any of the ways it
// can be printed, contains one of the secrets. Call it before any message
// that prints err.
func assertNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Fatalf("error text contains a secret (%s)", fingerprint(s))
			}
		}
	}
}

// withoutURL returns the error inside a *url.Error, whose text repeats the
// request URL: a callback URL carries the authorization code and state.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// drain reads what is left of a response body (up to 1 MiB) and closes
// it, so the connection can be reused.
func drain(resp *http.Response) error {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.Body.Close()
}

// lockedBuffer collects the server's stderr.
type lockedBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
