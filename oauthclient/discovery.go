package oauthclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// SMARTConfiguration is a FHIR server's .well-known/smart-configuration
// (SMART App Launch 2.x §2.1). Optional members may be empty.
type SMARTConfiguration struct {
	Issuer                                   string   `json:"issuer,omitempty"`
	JWKSURI                                  string   `json:"jwks_uri,omitempty"`
	AuthorizationEndpoint                    string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                            string   `json:"token_endpoint"`
	RevocationEndpoint                       string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                    string   `json:"introspection_endpoint,omitempty"`
	ManagementEndpoint                       string   `json:"management_endpoint,omitempty"`
	RegistrationEndpoint                     string   `json:"registration_endpoint,omitempty"`
	DeviceAuthorizationEndpoint              string   `json:"device_authorization_endpoint,omitempty"` // RFC 8628 §4
	GrantTypesSupported                      []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported        []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgValuesSupport []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	ScopesSupported                          []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                   []string `json:"response_types_supported,omitempty"`
	CodeChallengeMethodsSupported            []string `json:"code_challenge_methods_supported,omitempty"`
	Capabilities                             []string `json:"capabilities,omitempty"`
}

// ServerMetadata is RFC 8414 authorization server metadata (also what
// OpenID Connect discovery serves).
type ServerMetadata struct {
	Issuer                                 string   `json:"issuer"`
	AuthorizationEndpoint                  string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                          string   `json:"token_endpoint,omitempty"`
	JWKSURI                                string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint                   string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                     string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                  string   `json:"introspection_endpoint,omitempty"`
	DeviceAuthorizationEndpoint            string   `json:"device_authorization_endpoint,omitempty"` // RFC 8628 §4
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                 []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgsSupported  []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported          []string `json:"dpop_signing_alg_values_supported,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	// TLSClientCertificateBoundAccessTokens and MTLSEndpointAliases are
	// RFC 8705 §3.3 and §5: endpoints to use with a client certificate.
	TLSClientCertificateBoundAccessTokens bool              `json:"tls_client_certificate_bound_access_tokens,omitempty"`
	MTLSEndpointAliases                   map[string]string `json:"mtls_endpoint_aliases,omitempty"`
}

// TokenEndpointFor returns the token endpoint a client authenticating with
// auth should use: the mtls_endpoint_aliases token endpoint (RFC 8705 §5)
// for TLSClientAuth and SelfSignedTLSClientAuth when the server names one,
// else TokenEndpoint.
func (m *ServerMetadata) TokenEndpointFor(auth ClientAuth) string {
	if _, ok := auth.(certificateAuth); ok {
		if alias := m.MTLSEndpointAliases["token_endpoint"]; alias != "" {
			return alias
		}
	}
	return m.TokenEndpoint
}

// ErrDiscovery wraps every discovery failure.
var ErrDiscovery = errors.New("oauthclient: discovery failed")

// maxMetadataSize bounds a discovery document.
const maxMetadataSize = 1 << 20

// DiscoverSMART reads {fhirBase}/.well-known/smart-configuration, keeping
// the query of fhirBase (an API gateway's key, say). fhirBase must be https
// (or http to a loopback address). The HTTP client is the one stored in ctx
// under oauth2.HTTPClient, else http.DefaultClient; its redirect policy is
// applied after discovery's own, which refuses every redirect that leaves
// https (an error wrapping ErrInsecureURL). Error texts show URLs without
// their query. DiscoverSMARTWithClient takes the client as an argument.
func DiscoverSMART(ctx context.Context, fhirBase string) (*SMARTConfiguration, error) {
	return DiscoverSMARTWithClient(ctx, nil, fhirBase)
}

// DiscoverSMARTWithClient is DiscoverSMART with the HTTP client given: hc
// (nil: the one stored in ctx under oauth2.HTTPClient, else
// http.DefaultClient). hc is not modified: discovery uses a copy whose
// redirect policy first refuses every redirect that leaves https, then
// applies hc's own.
func DiscoverSMARTWithClient(ctx context.Context, hc *http.Client, fhirBase string) (*SMARTConfiguration, error) {
	// Over plain http, anyone on the path could name their own token
	// endpoint and receive the client's credentials.
	if err := checkURL(fhirBase, false); err != nil {
		return nil, fmt.Errorf("%w: FHIR base: %w", ErrDiscovery, err)
	}
	bu, err := url.Parse(fhirBase)
	if err != nil {
		return nil, fmt.Errorf("%w: FHIR base is not a valid URL", ErrDiscovery)
	}
	const wellKnown = "/.well-known/smart-configuration"
	bu.Path = strings.TrimRight(bu.Path, "/") + wellKnown
	if bu.RawPath != "" {
		bu.RawPath = strings.TrimRight(bu.RawPath, "/") + wellKnown
	}
	bu.Fragment, bu.RawFragment = "", ""
	body, err := getJSON(ctx, hc, bu.String())
	if err != nil {
		return nil, err
	}
	return ParseSMARTConfiguration(body)
}

// ParseSMARTConfiguration parses a smart-configuration document. It needs
// a token_endpoint that is an absolute https (or loopback http) URL; other
// members are optional and unknown ones ignored.
func ParseSMARTConfiguration(body []byte) (*SMARTConfiguration, error) {
	var c SMARTConfiguration
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, fmt.Errorf("%w: smart-configuration is not valid JSON", ErrDiscovery)
	}
	if c.TokenEndpoint == "" {
		return nil, fmt.Errorf("%w: smart-configuration has no token_endpoint", ErrDiscovery)
	}
	if err := checkURL(c.TokenEndpoint, false); err != nil {
		return nil, fmt.Errorf("%w: token_endpoint: %w", ErrDiscovery, err)
	}
	return &c, nil
}

// DiscoverServer fetches RFC 8414 metadata for issuer
// (/.well-known/oauth-authorization-server, inserted before the issuer's
// path), falling back to OpenID Connect discovery
// ({issuer}/.well-known/openid-configuration), and checks that the
// document's issuer is exactly issuer (RFC 8414 §3.3). The HTTP client and
// the redirect policy are those of DiscoverSMART; DiscoverServerWithClient
// takes the client as an argument.
func DiscoverServer(ctx context.Context, issuer string) (*ServerMetadata, error) {
	return DiscoverServerWithClient(ctx, nil, issuer)
}

// DiscoverServerWithClient is DiscoverServer with the HTTP client given: hc
// (nil: the one stored in ctx under oauth2.HTTPClient, else
// http.DefaultClient), used as DiscoverSMARTWithClient uses it.
func DiscoverServerWithClient(ctx context.Context, hc *http.Client, issuer string) (*ServerMetadata, error) {
	iu, err := url.Parse(issuer)
	if err != nil || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("%w: issuer must be an absolute URL without query or fragment", ErrDiscovery)
	}
	if err := checkURL(issuer, false); err != nil {
		return nil, fmt.Errorf("%w: issuer: %w", ErrDiscovery, err)
	}
	path := strings.TrimRight(iu.EscapedPath(), "/")
	rfc8414 := iu.Scheme + "://" + iu.Host + "/.well-known/oauth-authorization-server" + path
	oidc := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	var firstErr error
	for _, u := range []string{rfc8414, oidc} {
		body, err := getJSON(ctx, hc, u)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return ParseServerMetadata(body, issuer)
	}
	return nil, firstErr
}

// ParseServerMetadata parses RFC 8414 / OpenID metadata and checks its
// issuer against the expected one.
func ParseServerMetadata(body []byte, issuer string) (*ServerMetadata, error) {
	var m ServerMetadata
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata is not valid JSON", ErrDiscovery)
	}
	if m.Issuer != issuer {
		// The server's issuer value is not repeated: a hostile server could
		// echo anything into it.
		return nil, fmt.Errorf("%w: metadata issuer does not match %q", ErrDiscovery,
			tokenendpoint.Printable(tokenendpoint.RedactURL(issuer), 200))
	}
	if m.TokenEndpoint != "" {
		if err := checkURL(m.TokenEndpoint, false); err != nil {
			return nil, fmt.Errorf("%w: token_endpoint: %w", ErrDiscovery, err)
		}
	}
	return &m, nil
}

func httpClientFrom(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		return c
	}
	return http.DefaultClient
}

// discoveryClient returns a copy of hc (nil: the ctx's client) whose redirect policy
// is checkDiscoveryRedirect followed by the caller's own (or net/http's
// default limit of 10 redirects). The caller's client is not changed.
func discoveryClient(ctx context.Context, hc *http.Client) *http.Client {
	if hc == nil {
		hc = httpClientFrom(ctx)
	}
	c := *hc
	callers := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkDiscoveryRedirect(req, via); err != nil {
			return err
		}
		if callers != nil {
			return callers(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// checkDiscoveryRedirect allows a redirect to https, and one from plain
// http on a loopback host to plain http on a loopback host; anything else
// would let whoever sits on the path serve the metadata, naming their own
// token endpoint.
func checkDiscoveryRedirect(req *http.Request, via []*http.Request) error {
	to := req.URL
	if strings.EqualFold(to.Scheme, "https") {
		return nil
	}
	first := via[0].URL
	if strings.EqualFold(to.Scheme, "http") && isLoopback(to.Hostname()) &&
		strings.EqualFold(first.Scheme, "http") && isLoopback(first.Hostname()) {
		return nil
	}
	return &insecureRedirectError{
		from: tokenendpoint.RedactURL(via[len(via)-1].URL.String()),
		to:   tokenendpoint.RedactURL(to.String()),
	}
}

// insecureRedirectError is a redirect discovery refused; it wraps
// ErrInsecureURL. Its URLs are already redacted.
type insecureRedirectError struct{ from, to string }

func (e *insecureRedirectError) Error() string {
	return fmt.Sprintf("oauthclient: discovery redirect from %s to %s refused: only https, or plain http between loopback hosts, is followed", e.from, e.to)
}

func (e *insecureRedirectError) Unwrap() error { return ErrInsecureURL }

func getJSON(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	shown := tokenendpoint.RedactURL(u)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: %w", ErrDiscovery, shown, tokenendpoint.RedactURLError(err))
	}
	req.Header.Set("Accept", "application/json")
	resp, err := discoveryClient(ctx, hc).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, tokenendpoint.RedactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrDiscovery, shown, tokenendpoint.RedactURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrDiscovery, shown, resp.StatusCode)
	}
	if len(body) > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s: document larger than 1 MiB", ErrDiscovery, shown)
	}
	return body, nil
}
