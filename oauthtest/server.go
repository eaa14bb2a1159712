package oauthtest

import (
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Auth method names, as used in [Client.AuthMethod] and in the server metadata.
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthPrivateKeyJWT     = "private_key_jwt"
	AuthNone              = "none"
)

// Grant type names, as used in [Client.GrantTypes], [Stats.ByGrant] and the
// grant_type form parameter.
const (
	GrantClientCredentials = "client_credentials"
	GrantRefreshToken      = "refresh_token"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	GrantPassword          = "password"
	GrantAuthorizationCode = "authorization_code"
)

var allGrantTypes = []string{
	GrantClientCredentials, GrantRefreshToken, GrantJWTBearer,
	GrantTokenExchange, GrantPassword, GrantAuthorizationCode, GrantDeviceCode,
}

// Server is a strict OAuth 2.0 authorization server with a small protected
// FHIR-like resource, listening on a loopback address.
//
// All methods are safe for concurrent use, including while requests are
// being served, except that Logger must be set before the first request.
type Server struct {
	// URL is the base URL, e.g. "http://127.0.0.1:41234", without a trailing slash.
	URL string
	// Logger, if set, receives one line per request (never a secret or a
	// token). Set it before the first request. Optional: nil logs nothing.
	Logger *slog.Logger

	ts *httptest.Server

	mu              sync.Mutex // guards everything below
	clients         map[string]*registeredClient
	users           map[string]string
	firstUser       string
	access          map[string]*accessToken
	refresh         map[string]*refreshToken
	codes           map[string]*authCode
	seenJTI         map[string]time.Time // issuer + "\x00" + jti → assertion expiry
	injected        []Response
	stats           Stats
	requests        []TokenRequest
	tokenLifetime   time.Duration
	refreshLifetime time.Duration
	rotate          bool
	reuseGrace      time.Duration
	omitExpiresIn   bool
	tokenDelay      time.Duration
	now             func() time.Time
	nextFamily      uint64
	dpop            dpopState      // DPoP settings and proof replay memory (dpop.go)
	clientCAs       *x509.CertPool // CAs trusted for tls_client_auth (mtls.go)
	device          deviceState    // device authorization grant (device.go)
	bulk            bulkState      // Bulk Data export endpoints and storage host (bulk.go)
}

// NewServer starts a Server over plain HTTP on 127.0.0.1. Close it when done.
func NewServer() *Server { return newServer(false) }

// NewTLSServer starts a Server over HTTPS on 127.0.0.1 with a self-signed
// certificate; [Server.HTTPClient] trusts it. Close it when done.
func NewTLSServer() *Server { return newServer(true) }

func newServer(tls bool) *Server {
	s := newState()
	s.ts = httptest.NewUnstartedServer(s.routes())
	// URL is set before the server starts so that handlers never race with it.
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	s.URL = scheme + s.ts.Listener.Addr().String()
	if tls {
		s.ts.StartTLS()
	} else {
		s.ts.Start()
	}
	return s
}

// newState returns a Server with its defaults and no listener.
func newState() *Server {
	return &Server{
		clients:         make(map[string]*registeredClient),
		users:           make(map[string]string),
		access:          make(map[string]*accessToken),
		refresh:         make(map[string]*refreshToken),
		codes:           make(map[string]*authCode),
		seenJTI:         make(map[string]time.Time),
		stats:           Stats{ByGrant: make(map[string]int)},
		tokenLifetime:   time.Hour,
		refreshLifetime: 24 * time.Hour,
		rotate:          true,
		now:             time.Now,
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/token", s.handleToken)
	mux.HandleFunc("/device_authorization", s.handleDeviceAuthorization)
	mux.HandleFunc("GET /device", s.handleDevicePage)
	mux.HandleFunc("/authorize", s.handleAuthorize)
	mux.HandleFunc("/revoke", s.handleRevoke)
	mux.HandleFunc("/introspect", s.handleIntrospect)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", s.handleASMetadata)
	mux.HandleFunc("GET /.well-known/openid-configuration", s.handleASMetadata)
	mux.HandleFunc("GET /fhir/.well-known/smart-configuration", s.handleSMARTConfig)
	mux.HandleFunc("GET /fhir/metadata", s.handleCapabilityStatement)
	mux.HandleFunc("GET /fhir/Patient", s.handlePatientSearch)
	mux.HandleFunc("POST /fhir/Patient/_search", s.handlePatientSearch)
	mux.HandleFunc("GET /fhir/Patient/{id}", s.handlePatientRead)
	s.bulkRoutes(mux)
	return mux
}

// Close shuts the server down, and its storage host if one was started,
// and blocks until all requests have finished.
func (s *Server) Close() {
	s.ts.Close()
	s.bulk.close()
}

// HTTPClient returns an *http.Client for this server; for a TLS server it
// trusts the server's certificate.
func (s *Server) HTTPClient() *http.Client { return s.ts.Client() }

// Issuer returns the issuer identifier, equal to URL.
func (s *Server) Issuer() string { return s.URL }

// TokenURL returns URL + "/token".
func (s *Server) TokenURL() string { return s.URL + "/token" }

// AuthorizeURL returns URL + "/authorize".
func (s *Server) AuthorizeURL() string { return s.URL + "/authorize" }

// RevocationURL returns URL + "/revoke".
func (s *Server) RevocationURL() string { return s.URL + "/revoke" }

// IntrospectionURL returns URL + "/introspect".
func (s *Server) IntrospectionURL() string { return s.URL + "/introspect" }

// FHIRBase returns URL + "/fhir", the base of the protected resource.
func (s *Server) FHIRBase() string { return s.URL + "/fhir" }

// RegisterClient validates c and registers it. Registering an ID again
// replaces the earlier registration (for example to rotate its keys);
// tokens already issued stay valid.
func (s *Server) RegisterClient(c Client) error {
	rc, err := validateClient(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = rc
	return nil
}

// AddUser adds (or replaces) a user for the password grant. The first user
// added is the subject that /authorize approves, unless the authorization
// request names another one with login_hint; with no users it is "user".
func (s *Server) AddUser(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstUser == "" {
		s.firstUser = username
	}
	s.users[username] = password
}

// SetTokenLifetime sets the lifetime of access tokens issued from now on.
// The default is one hour.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenLifetime = d
}

// SetRefreshTokenLifetime sets the lifetime of refresh tokens issued from
// now on. The default is 24 hours.
func (s *Server) SetRefreshTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLifetime = d
}

// SetRotateRefreshTokens turns refresh token rotation on (the default) or
// off. With rotation, every refresh consumes the refresh token and returns
// a new one; presenting a consumed one revokes its whole family. Without,
// a refresh token stays usable and no new one is returned.
func (s *Server) SetRotateRefreshTokens(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate = on
}

// SetRefreshReuseGrace sets the grace period for refresh token rotation
// (Okta's "grace period for token rotation", Auth0's "reuse interval").
// Within d after a refresh token was consumed by rotation, presenting it
// again is answered like a fresh rotation of it: a new access token and a
// new refresh token of the same family, which stays alive; the tokens
// issued by the first rotation stay valid too. Such requests are counted
// in Stats.RefreshGraceReuses, not RefreshReuseDetected. The period is
// measured from the first rotation, by the server's clock (see SetNow), so
// presenting the token again does not extend it. After d, reuse is
// detected and the family revoked as without a grace period. The default,
// 0, is strict: any reuse is detected.
func (s *Server) SetRefreshReuseGrace(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reuseGrace = max(d, 0)
}

// SetOmitExpiresIn makes token responses leave out expires_in.
func (s *Server) SetOmitExpiresIn(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.omitExpiresIn = on
}

// SetTokenDelay delays every token response that is not injected by d, or
// until the request's context ends.
func (s *Server) SetTokenDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenDelay = d
}

// InjectTokenResponses queues canned answers: the next len(r) requests to
// /token get them, in order, before any checking. They are counted in
// Stats and logged in TokenRequestLog like other token requests.
func (s *Server) InjectTokenResponses(r ...Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, resp := range r {
		resp.Header = resp.Header.Clone()
		s.injected = append(s.injected, resp)
	}
}

// SetNow sets the clock used for every expiry check and timestamp. nil
// restores time.Now. Delays (SetTokenDelay, Response.Delay) use real time.
func (s *Server) SetNow(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = now
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByGrant = make(map[string]int, len(s.stats.ByGrant))
	for k, v := range s.stats.ByGrant {
		st.ByGrant[k] = v
	}
	return st
}

// TokenRequestLog returns a copy of the log of requests to /token, oldest first.
func (s *Server) TokenRequestLog() []TokenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TokenRequest, len(s.requests))
	for i, r := range s.requests {
		r.FormKeys = append([]string(nil), r.FormKeys...)
		out[i] = r
	}
	return out
}

func (s *Server) logInfo(msg string, args ...any) {
	if l := s.Logger; l != nil {
		l.Info(msg, args...)
	}
}
