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
	ScopesSupported                        []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported                 []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported                    []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported      []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	TokenEndpointAuthSigningAlgsSupported  []string `json:"token_endpoint_auth_signing_alg_values_supported,omitempty"`
	CodeChallengeMethodsSupported          []string `json:"code_challenge_methods_supported,omitempty"`
	DPoPSigningAlgValuesSupported          []string `json:"dpop_signing_alg_values_supported,omitempty"`
	AuthorizationResponseIssParamSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// ErrDiscovery wraps every discovery failure.
var ErrDiscovery = errors.New("oauthclient: discovery failed")

// maxMetadataSize bounds a discovery document.
const maxMetadataSize = 1 << 20

// DiscoverSMART reads {fhirBase}/.well-known/smart-configuration. fhirBase
// must be https (or http to a loopback address). The HTTP client is the one
// stored in ctx under oauth2.HTTPClient, else http.DefaultClient.
func DiscoverSMART(ctx context.Context, fhirBase string) (*SMARTConfiguration, error) {
	// Over plain http, anyone on the path could name their own token
	// endpoint and receive the client's credentials.
	if err := checkURL(fhirBase, false); err != nil {
		return nil, fmt.Errorf("%w: FHIR base: %v", ErrDiscovery, err)
	}
	u := strings.TrimRight(fhirBase, "/") + "/.well-known/smart-configuration"
	body, err := getJSON(ctx, u)
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
		return nil, fmt.Errorf("%w: token_endpoint: %v", ErrDiscovery, err)
	}
	return &c, nil
}

// DiscoverServer fetches RFC 8414 metadata for issuer
// (/.well-known/oauth-authorization-server, inserted before the issuer's
// path), falling back to OpenID Connect discovery
// ({issuer}/.well-known/openid-configuration), and checks that the
// document's issuer is exactly issuer (RFC 8414 §3.3). The HTTP client is
// taken from ctx as in DiscoverSMART.
func DiscoverServer(ctx context.Context, issuer string) (*ServerMetadata, error) {
	iu, err := url.Parse(issuer)
	if err != nil || iu.Host == "" || iu.RawQuery != "" || iu.Fragment != "" {
		return nil, fmt.Errorf("%w: issuer must be an absolute URL without query or fragment", ErrDiscovery)
	}
	if err := checkURL(issuer, false); err != nil {
		return nil, fmt.Errorf("%w: issuer: %v", ErrDiscovery, err)
	}
	path := strings.TrimRight(iu.EscapedPath(), "/")
	rfc8414 := iu.Scheme + "://" + iu.Host + "/.well-known/oauth-authorization-server" + path
	oidc := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	var firstErr error
	for _, u := range []string{rfc8414, oidc} {
		body, err := getJSON(ctx, u)
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
		return nil, fmt.Errorf("%w: metadata issuer %q does not match %q", ErrDiscovery, truncate(m.Issuer, 200), issuer)
	}
	if m.TokenEndpoint != "" {
		if err := checkURL(m.TokenEndpoint, false); err != nil {
			return nil, fmt.Errorf("%w: token_endpoint: %v", ErrDiscovery, err)
		}
	}
	return &m, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func httpClientFrom(ctx context.Context) *http.Client {
	if c, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && c != nil {
		return c
	}
	return http.DefaultClient
}

func getJSON(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDiscovery, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := httpClientFrom(ctx).Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDiscovery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %w", ErrDiscovery, u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s: status %d", ErrDiscovery, u, resp.StatusCode)
	}
	if len(body) > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s: document larger than 1 MiB", ErrDiscovery, u)
	}
	return body, nil
}
