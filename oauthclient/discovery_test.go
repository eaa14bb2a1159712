package oauthclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// epicSMART is shaped like the smart-configuration an Epic FHIR server serves.
const epicSMART = `{
  "issuer": "https://fhir.epic.com/interconnect-fhir-oauth/oauth2",
  "jwks_uri": "https://fhir.epic.com/interconnect-fhir-oauth/api/epic/2019/Security/Open/PublicKeys/530005/OIDC",
  "authorization_endpoint": "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/authorize",
  "token_endpoint": "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token",
  "introspection_endpoint": "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/introspect",
  "revocation_endpoint": "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/revoke",
  "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
  "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
  "grant_types_supported": ["authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"],
  "scopes_supported": ["openid", "fhirUser", "launch", "launch/patient", "patient/*.read", "system/*.read", "offline_access"],
  "response_types_supported": ["code"],
  "code_challenge_methods_supported": ["S256"],
  "capabilities": ["launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient", "sso-openid-connect", "permission-offline", "permission-patient", "permission-user", "permission-v1"],
  "epic_extension": {"nested": [1, 2, 3]}
}`

func TestParseSMARTConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    *SMARTConfiguration // nil: only check TokenEndpoint
		wantTok string
		wantErr bool
	}{
		{name: "Epic-like document", body: epicSMART, wantTok: "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token",
			want: &SMARTConfiguration{
				Issuer:                                   "https://fhir.epic.com/interconnect-fhir-oauth/oauth2",
				JWKSURI:                                  "https://fhir.epic.com/interconnect-fhir-oauth/api/epic/2019/Security/Open/PublicKeys/530005/OIDC",
				AuthorizationEndpoint:                    "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/authorize",
				TokenEndpoint:                            "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/token",
				IntrospectionEndpoint:                    "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/introspect",
				RevocationEndpoint:                       "https://fhir.epic.com/interconnect-fhir-oauth/oauth2/revoke",
				TokenEndpointAuthMethodsSupported:        []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
				TokenEndpointAuthSigningAlgValuesSupport: []string{"RS384", "ES384"},
				GrantTypesSupported:                      []string{"authorization_code", "client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"},
				ScopesSupported:                          []string{"openid", "fhirUser", "launch", "launch/patient", "patient/*.read", "system/*.read", "offline_access"},
				ResponseTypesSupported:                   []string{"code"},
				CodeChallengeMethodsSupported:            []string{"S256"},
				Capabilities:                             []string{"launch-ehr", "launch-standalone", "client-public", "client-confidential-symmetric", "client-confidential-asymmetric", "context-ehr-patient", "context-standalone-patient", "sso-openid-connect", "permission-offline", "permission-patient", "permission-user", "permission-v1"},
			}},
		{name: "only token_endpoint", body: `{"token_endpoint":"https://as.example.org/token"}`, wantTok: "https://as.example.org/token",
			want: &SMARTConfiguration{TokenEndpoint: "https://as.example.org/token"}},
		{name: "loopback http token_endpoint", body: `{"token_endpoint":"http://127.0.0.1:8080/token"}`, wantTok: "http://127.0.0.1:8080/token"},
		{name: "unknown members ignored", body: `{"token_endpoint":"https://as.example.org/token","x-vendor":{"a":[null,true]},"capabilities":["launch-ehr"],"future_member":42}`,
			wantTok: "https://as.example.org/token"},
		{name: "missing token_endpoint", body: `{"issuer":"https://as.example.org","authorization_endpoint":"https://as.example.org/authorize"}`, wantErr: true},
		{name: "empty token_endpoint", body: `{"token_endpoint":""}`, wantErr: true},
		{name: "null token_endpoint", body: `{"token_endpoint":null}`, wantErr: true},
		{name: "http to a remote host", body: `{"token_endpoint":"http://as.example.org/token"}`, wantErr: true},
		{name: "relative token_endpoint", body: `{"token_endpoint":"/oauth2/token"}`, wantErr: true},
		{name: "other scheme", body: `{"token_endpoint":"ftp://as.example.org/token"}`, wantErr: true},
		{name: "user information in token_endpoint", body: `{"token_endpoint":"https://user:pass@as.example.org/token"}`, wantErr: true},
		{name: "token_endpoint is a number", body: `{"token_endpoint":5}`, wantErr: true},
		{name: "token_endpoint is an array", body: `{"token_endpoint":["https://as.example.org/token"]}`, wantErr: true},
		{name: "capabilities is a string", body: `{"token_endpoint":"https://as.example.org/token","capabilities":"launch-ehr"}`, wantErr: true},
		{name: "grant types are numbers", body: `{"token_endpoint":"https://as.example.org/token","grant_types_supported":[1,2]}`, wantErr: true},
		{name: "not JSON", body: `<html>Not Found</html>`, wantErr: true},
		{name: "truncated", body: `{"token_endpoint":"https://as.example.org/to`, wantErr: true},
		{name: "array", body: `[{"token_endpoint":"https://as.example.org/token"}]`, wantErr: true},
		{name: "null", body: `null`, wantErr: true},
		{name: "empty", body: ``, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSMARTConfiguration([]byte(tt.body))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSMARTConfiguration succeeded with token_endpoint %q; want an error", got.TokenEndpoint)
				}
				if !errors.Is(err, ErrDiscovery) {
					t.Errorf("error %q does not wrap ErrDiscovery", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSMARTConfiguration: %v", err)
			}
			if got.TokenEndpoint != tt.wantTok {
				t.Errorf("TokenEndpoint = %q, want %q", got.TokenEndpoint, tt.wantTok)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseServerMetadata(t *testing.T) {
	const issuer = "https://as.example.org/tenant1"
	tests := []struct {
		name    string
		body    string
		issuer  string
		wantErr bool
	}{
		{name: "issuer matches", issuer: issuer,
			body: `{"issuer":"https://as.example.org/tenant1","token_endpoint":"https://as.example.org/tenant1/token","jwks_uri":"https://as.example.org/tenant1/jwks","grant_types_supported":["client_credentials"],"authorization_response_iss_parameter_supported":true}`},
		{name: "no token endpoint is fine", issuer: issuer, body: `{"issuer":"https://as.example.org/tenant1"}`},
		{name: "unknown members ignored", issuer: issuer, body: `{"issuer":"https://as.example.org/tenant1","mtls_endpoint_aliases":{"token_endpoint":"https://mtls.example.org/token"}}`},
		{name: "other issuer", issuer: issuer, wantErr: true, body: `{"issuer":"https://evil.example.org/tenant1","token_endpoint":"https://evil.example.org/token"}`},
		{name: "other tenant", issuer: issuer, wantErr: true, body: `{"issuer":"https://as.example.org/tenant2"}`},
		{name: "trailing slash in document", issuer: issuer, wantErr: true, body: `{"issuer":"https://as.example.org/tenant1/"}`},
		{name: "trailing slash expected", issuer: issuer + "/", wantErr: true, body: `{"issuer":"https://as.example.org/tenant1"}`},
		{name: "issuer differs in case", issuer: issuer, wantErr: true, body: `{"issuer":"https://AS.example.org/tenant1"}`},
		{name: "missing issuer", issuer: issuer, wantErr: true, body: `{"token_endpoint":"https://as.example.org/tenant1/token"}`},
		{name: "issuer is a number", issuer: issuer, wantErr: true, body: `{"issuer":1}`},
		{name: "http token endpoint to a remote host", issuer: issuer, wantErr: true, body: `{"issuer":"https://as.example.org/tenant1","token_endpoint":"http://as.example.org/token"}`},
		{name: "scopes is a string", issuer: issuer, wantErr: true, body: `{"issuer":"https://as.example.org/tenant1","scopes_supported":"openid"}`},
		{name: "not JSON", issuer: issuer, wantErr: true, body: `<!doctype html>`},
		{name: "null", issuer: issuer, wantErr: true, body: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseServerMetadata([]byte(tt.body), tt.issuer)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseServerMetadata succeeded (issuer %q); want an error", m.Issuer)
				}
				if !errors.Is(err, ErrDiscovery) {
					t.Errorf("error %q does not wrap ErrDiscovery", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseServerMetadata: %v", err)
			}
			if m.Issuer != tt.issuer {
				t.Errorf("Issuer = %q, want %q", m.Issuer, tt.issuer)
			}
		})
	}
}

// discoveryServer is a TLS server that answers the given paths and records
// the paths it was asked for.
type discoveryServer struct {
	*httptest.Server
	mu      sync.Mutex
	paths   []string // guarded by mu
	queries []string // RawQuery of each request; guarded by mu
}

func newDiscoveryServer(t *testing.T, docs func(base string) map[string]string) *discoveryServer {
	ds := &discoveryServer{}
	var served map[string]string
	ds.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds.mu.Lock()
		ds.paths = append(ds.paths, r.URL.Path)
		ds.queries = append(ds.queries, r.URL.RawQuery)
		ds.mu.Unlock()
		if r.Method != http.MethodGet {
			t.Errorf("discovery used %s", r.Method)
		}
		doc, ok := served[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, doc)
	}))
	served = docs(ds.URL)
	t.Cleanup(ds.Close)
	return ds
}

func (ds *discoveryServer) requested() []string {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return append([]string(nil), ds.paths...)
}

func discoveryContext(t *testing.T, ds *discoveryServer) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return context.WithValue(ctx, oauth2.HTTPClient, ds.Client())
}

func TestDiscoverSMART(t *testing.T) {
	big := `{"token_endpoint":"https://as.example.org/token","x":"` + strings.Repeat("a", 2<<20) + `"}`
	tests := []struct {
		name     string
		docs     func(base string) map[string]string
		base     string // appended to the server URL
		wantPath string
		wantErr  bool
	}{
		{name: "FHIR base", base: "/api/FHIR/R4", wantPath: "/api/FHIR/R4/.well-known/smart-configuration",
			docs: func(b string) map[string]string {
				return map[string]string{"/api/FHIR/R4/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/oauth2/token","capabilities":["client-confidential-asymmetric"]}`}
			}},
		{name: "FHIR base with trailing slash", base: "/api/FHIR/R4/", wantPath: "/api/FHIR/R4/.well-known/smart-configuration",
			docs: func(b string) map[string]string {
				return map[string]string{"/api/FHIR/R4/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/oauth2/token"}`}
			}},
		{name: "404", base: "/fhir", wantErr: true, docs: func(string) map[string]string { return nil }},
		{name: "2 MB document", base: "/fhir", wantErr: true,
			docs: func(string) map[string]string {
				return map[string]string{"/fhir/.well-known/smart-configuration": big}
			}},
		{name: "HTML", base: "/fhir", wantErr: true,
			docs: func(string) map[string]string {
				return map[string]string{"/fhir/.well-known/smart-configuration": `<html><body>Sign in</body></html>`}
			}},
		{name: "insecure token endpoint", base: "/fhir", wantErr: true,
			docs: func(string) map[string]string {
				return map[string]string{"/fhir/.well-known/smart-configuration": `{"token_endpoint":"http://as.example.org/token"}`}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := newDiscoveryServer(t, tt.docs)
			c, err := DiscoverSMART(discoveryContext(t, ds), ds.URL+tt.base)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DiscoverSMART succeeded with token_endpoint %q; want an error", c.TokenEndpoint)
				}
				if !errors.Is(err, ErrDiscovery) {
					t.Errorf("error %q does not wrap ErrDiscovery", err)
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error text is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("DiscoverSMART: %v", err)
			}
			if want := ds.URL + "/oauth2/token"; c.TokenEndpoint != want {
				t.Errorf("TokenEndpoint = %q, want %q", c.TokenEndpoint, want)
			}
			if got := ds.requested(); len(got) != 1 || got[0] != tt.wantPath {
				t.Errorf("requested %q, want [%q]", got, tt.wantPath)
			}
		})
	}
}

func TestDiscoverSMARTNeedsTheContextClient(t *testing.T) {
	ds := newDiscoveryServer(t, func(b string) map[string]string {
		return map[string]string{"/fhir/.well-known/smart-configuration": `{"token_endpoint":"` + b + `/token"}`}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Without the test server's client the certificate is not trusted.
	if _, err := DiscoverSMART(ctx, ds.URL+"/fhir"); err == nil || !errors.Is(err, ErrDiscovery) {
		t.Fatalf("DiscoverSMART with an untrusted certificate: err = %v, want ErrDiscovery", err)
	}
}

func TestDiscoverServer(t *testing.T) {
	meta := func(issuer string) string {
		return `{"issuer":"` + issuer + `","token_endpoint":"` + issuer + `/token","jwks_uri":"` + issuer + `/jwks"}`
	}
	big := `{"x":"` + strings.Repeat("a", 2<<20) + `"}`
	tests := []struct {
		name      string
		path      string // issuer path appended to the server URL
		docs      func(base string) map[string]string
		wantPaths []string
		wantErr   bool
	}{
		{name: "RFC 8414 with issuer path", path: "/tenant1",
			docs: func(b string) map[string]string {
				return map[string]string{"/.well-known/oauth-authorization-server/tenant1": meta(b + "/tenant1")}
			},
			wantPaths: []string{"/.well-known/oauth-authorization-server/tenant1"}},
		{name: "RFC 8414 without issuer path", path: "",
			docs: func(b string) map[string]string {
				return map[string]string{"/.well-known/oauth-authorization-server": meta(b)}
			},
			wantPaths: []string{"/.well-known/oauth-authorization-server"}},
		{name: "fallback to OpenID configuration", path: "/tenant1",
			docs: func(b string) map[string]string {
				return map[string]string{"/tenant1/.well-known/openid-configuration": meta(b + "/tenant1")}
			},
			wantPaths: []string{"/.well-known/oauth-authorization-server/tenant1", "/tenant1/.well-known/openid-configuration"}},
		{name: "404 everywhere", path: "/tenant1", wantErr: true,
			docs:      func(string) map[string]string { return nil },
			wantPaths: []string{"/.well-known/oauth-authorization-server/tenant1", "/tenant1/.well-known/openid-configuration"}},
		{name: "2 MB document", path: "/tenant1", wantErr: true,
			docs: func(string) map[string]string {
				return map[string]string{"/.well-known/oauth-authorization-server/tenant1": big, "/tenant1/.well-known/openid-configuration": big}
			}},
		{name: "issuer of another tenant", path: "/tenant1", wantErr: true,
			docs: func(b string) map[string]string {
				return map[string]string{"/.well-known/oauth-authorization-server/tenant1": meta(b + "/tenant2")}
			}},
		{name: "issuer with a trailing slash", path: "/tenant1", wantErr: true,
			docs: func(b string) map[string]string {
				return map[string]string{"/.well-known/oauth-authorization-server/tenant1": meta(b + "/tenant1/")}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := newDiscoveryServer(t, tt.docs)
			issuer := ds.URL + tt.path
			m, err := DiscoverServer(discoveryContext(t, ds), issuer)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DiscoverServer succeeded with issuer %q; want an error", m.Issuer)
				}
				if !errors.Is(err, ErrDiscovery) {
					t.Errorf("error %q does not wrap ErrDiscovery", err)
				}
				if len(err.Error()) > 1024 {
					t.Errorf("error text is %d bytes long", len(err.Error()))
				}
			} else {
				if err != nil {
					t.Fatalf("DiscoverServer: %v", err)
				}
				if m.Issuer != issuer || m.TokenEndpoint != issuer+"/token" {
					t.Errorf("Issuer %q, TokenEndpoint %q; want %q and %q", m.Issuer, m.TokenEndpoint, issuer, issuer+"/token")
				}
			}
			if tt.wantPaths != nil && !reflect.DeepEqual(ds.requested(), tt.wantPaths) {
				t.Errorf("requested %q, want %q", ds.requested(), tt.wantPaths)
			}
		})
	}
}

func TestDiscoverServerRejectsBadIssuers(t *testing.T) {
	for _, issuer := range []string{
		"", "as.example.org", "/tenant1", "http://as.example.org", "https://as.example.org?x=1",
		"https://as.example.org#f", "https://user:pw@as.example.org", "ftp://as.example.org",
	} {
		t.Run(issuer, func(t *testing.T) {
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: failingTransport{t}})
			if _, err := DiscoverServer(ctx, issuer); !errors.Is(err, ErrDiscovery) {
				t.Fatalf("DiscoverServer(%q): err = %v, want ErrDiscovery", issuer, err)
			}
		})
	}
}

// failingTransport fails the test if any request is sent.
type failingTransport struct{ t *testing.T }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected request to %s", r.URL.Redacted())
	return nil, errors.New("no requests expected")
}

func FuzzParseSMARTConfiguration(f *testing.F) {
	f.Add([]byte(epicSMART))
	f.Add([]byte(`{"token_endpoint":"https://as.example.org/token"}`))
	f.Add([]byte(`{"token_endpoint":"http://127.0.0.1:8080/token","capabilities":["launch-ehr"]}`))
	f.Add([]byte(`{"token_endpoint":"http://[::1]/token","grant_types_supported":["client_credentials"]}`))
	f.Add([]byte(`{"token_endpoint":"http://as.example.org/token"}`))
	f.Add([]byte(`{"token_endpoint":5,"capabilities":"x"}`))
	f.Add([]byte(`{"issuer":"https://as.example.org"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ParseSMARTConfiguration(body)
		if err != nil {
			if c != nil {
				t.Fatal("a configuration and an error")
			}
			if !errors.Is(err, ErrDiscovery) {
				t.Fatalf("error does not wrap ErrDiscovery: %v", err)
			}
			return
		}
		if c.TokenEndpoint == "" {
			t.Fatal("accepted without a token_endpoint")
		}
		if err := checkURL(c.TokenEndpoint, false); err != nil {
			t.Fatalf("accepted an unusable token_endpoint: %v", err)
		}
	})
}

func FuzzParseServerMetadata(f *testing.F) {
	f.Add([]byte(`{"issuer":"https://as.example.org/tenant1","token_endpoint":"https://as.example.org/tenant1/token","jwks_uri":"https://as.example.org/tenant1/jwks"}`), "https://as.example.org/tenant1")
	f.Add([]byte(`{"issuer":"https://as.example.org/tenant1/"}`), "https://as.example.org/tenant1")
	f.Add([]byte(`{"issuer":"https://login.example.com","authorization_endpoint":"https://login.example.com/authorize","token_endpoint":"https://login.example.com/token","response_types_supported":["code"],"code_challenge_methods_supported":["S256"],"authorization_response_iss_parameter_supported":true}`), "https://login.example.com")
	f.Add([]byte(`{"issuer":"http://127.0.0.1:9000","token_endpoint":"http://127.0.0.1:9000/token"}`), "http://127.0.0.1:9000")
	f.Add([]byte(`{"issuer":"https://as.example.org","token_endpoint":"http://as.example.org/token"}`), "https://as.example.org")
	f.Add([]byte(`{"issuer":1}`), "")
	f.Add([]byte(`[]`), "https://as.example.org")
	f.Fuzz(func(t *testing.T, body []byte, issuer string) {
		m, err := ParseServerMetadata(body, issuer)
		if err != nil {
			if m != nil {
				t.Fatal("metadata and an error")
			}
			if !errors.Is(err, ErrDiscovery) {
				t.Fatalf("error does not wrap ErrDiscovery: %v", err)
			}
			return
		}
		if m.Issuer != issuer {
			t.Fatalf("issuer %q accepted for %q", m.Issuer, issuer)
		}
		if m.TokenEndpoint != "" {
			if err := checkURL(m.TokenEndpoint, false); err != nil {
				t.Fatalf("accepted an unusable token_endpoint: %v", err)
			}
		}
	})
}

func TestDiscoverSMARTRefusesPlainHTTPBase(t *testing.T) {
	calls := 0
	client := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
		calls++
		return nil, errors.New("no request may be sent")
	})}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, client)
	for _, base := range []string{"http://fhir.example.org/R4", "ftp://fhir.example.org/R4", "/R4"} {
		if _, err := DiscoverSMART(ctx, base); !errors.Is(err, ErrDiscovery) {
			t.Errorf("DiscoverSMART(%q) = %v, want ErrDiscovery", base, err)
		}
	}
	if calls != 0 {
		t.Fatalf("%d discovery requests sent to an insecure base", calls)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
