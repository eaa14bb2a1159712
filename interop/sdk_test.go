package interop

import (
	"context"
	"errors"
	"github.com/oauthkit/oauthkit/internal/testclock"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
)

// sdkOptions registers, for every key-based client, exactly the JWK Set that
// jwtassert.JWKS publishes for the client's signer: the provider must accept
// the SDK's own JWKS output.
var sdkOptions = ProviderOptions{PublicJWKS: sdkJWKS}

func sdkJWKS(keyPEM []byte, keyID, alg string) ([]byte, error) {
	s, err := jwtassert.ParsePEM(keyPEM, jwtassert.Options{KeyID: keyID, Algorithm: alg})
	if err != nil {
		return nil, err
	}
	return jwtassert.JWKS(s)
}

// signerFor loads c's private key the way a customer would.
func signerFor(t testing.TB, c Client) *jwtassert.Signer {
	t.Helper()
	s, err := jwtassert.ParsePEM(c.KeyPEM, jwtassert.Options{KeyID: c.KeyID})
	if err != nil {
		t.Fatalf("ParsePEM(%s): %v", c.ID, err)
	}
	if s.Algorithm() != c.Alg {
		t.Fatalf("ParsePEM(%s) inferred %s, want %s", c.ID, s.Algorithm(), c.Alg)
	}
	return s
}

func newTokenSource(t testing.TB, cfg oauthclient.Config) *oauthclient.TokenSource {
	t.Helper()
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		t.Fatalf("NewTokenSource: %v", err)
	}
	return ts
}

// readPatient GETs /fhir/Patient through client and returns the response
// with its body read.
func readPatient(t testing.TB, p *Provider, client *http.Client) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(p.FHIRBase + "/Patient")
	if err != nil {
		t.Fatalf("GET /fhir/Patient: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatalf("read /fhir/Patient: %v", err)
	}
	return resp, string(b)
}

func mustReadPatient(t testing.TB, p *Provider, client *http.Client) *http.Response {
	t.Helper()
	resp, body := readPatient(t, p, client)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"resourceType":"Bundle"`) {
		t.Fatalf("GET /fhir/Patient: status %d", resp.StatusCode)
	}
	return resp
}

// fakeClock is an adjustable clock for Config.Now: the SDK believes time
// has passed while the server does not.
type fakeClock = testclock.Clock

func newFakeClock() *fakeClock { return testclock.New(time.Now()) }

// TestSDKClientAuthMethods gets a client_credentials token with every client
// authentication method and reads the protected resource through
// TokenSource.Client; repeated reads reuse the cached token.
func TestSDKClientAuthMethods(t *testing.T) {
	p := startProvider(t, sdkOptions)
	tests := []struct {
		name   string
		client Client
		auth   func(c Client) oauthclient.ClientAuth
	}{
		{"client_secret_basic", p.Basic, func(c Client) oauthclient.ClientAuth { return oauthclient.ClientSecretBasic{Secret: c.Secret} }},
		{"client_secret_post", p.Post, func(c Client) oauthclient.ClientAuth { return oauthclient.ClientSecretPost{Secret: c.Secret} }},
		{"private_key_jwt_RS384", p.RS384, func(c Client) oauthclient.ClientAuth {
			return oauthclient.PrivateKeyJWT{Signer: signerFor(t, c)}
		}},
		{"private_key_jwt_ES384", p.ES384, func(c Client) oauthclient.ClientAuth {
			return oauthclient.PrivateKeyJWT{Signer: signerFor(t, c)}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenSource(t, oauthclient.Config{
				TokenURL: p.TokenURL,
				ClientID: tt.client.ID,
				Auth:     tt.auth(tt.client),
				Scopes:   []string{"system/Patient.rs"},
			})
			client := ts.Client(nil)
			for i := 0; i < 3; i++ {
				resp := mustReadPatient(t, p, client)
				if got := resp.Header.Get("X-Token-Client"); got != tt.client.ID {
					t.Fatalf("resource saw client %q, want %q", got, tt.client.ID)
				}
				if got := resp.Header.Get("X-Token-Scope"); got != "system/Patient.rs" {
					t.Errorf("token scope %q, want system/Patient.rs", got)
				}
			}
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("Token: %v", err)
			}
			if tok.Expiry.IsZero() || !strings.EqualFold(tok.TokenType, "Bearer") {
				t.Errorf("token: type %q, expiry set %v", tok.TokenType, !tok.Expiry.IsZero())
			}
			st := p.Stats(t)
			if got := st.TokenRequestsByClient[tt.client.ID]; got != 1 {
				t.Errorf("token requests for %s = %d, want 1", tt.client.ID, got)
			}
		})
	}
	if st := p.Stats(t); st.TokenErrors != 0 {
		t.Errorf("token errors = %d (%v), want 0", st.TokenErrors, st.TokenErrorsByCode)
	}
}

// TestSDKDiscovery finds the token endpoint through SMART and RFC 8414
// discovery and uses it.
func TestSDKDiscovery(t *testing.T) {
	p := startProvider(t, sdkOptions)
	ctx := context.Background()

	smart, err := oauthclient.DiscoverSMART(ctx, p.FHIRBase)
	if err != nil {
		t.Fatalf("DiscoverSMART: %v", err)
	}
	if smart.TokenEndpoint != p.TokenURL || smart.RevocationEndpoint != p.RevocationURL {
		t.Errorf("DiscoverSMART: token %q revocation %q, want %q %q", smart.TokenEndpoint, smart.RevocationEndpoint, p.TokenURL, p.RevocationURL)
	}
	meta, err := oauthclient.DiscoverServer(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("DiscoverServer: %v", err)
	}
	if meta.Issuer != p.Issuer || meta.TokenEndpoint != p.TokenURL {
		t.Errorf("DiscoverServer: issuer %q token %q", meta.Issuer, meta.TokenEndpoint)
	}

	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: smart.TokenEndpoint,
		ClientID: p.ES384.ID,
		Auth:     oauthclient.PrivateKeyJWT{Signer: signerFor(t, p.ES384)},
		Scopes:   []string{"system/Patient.rs"},
	})
	mustReadPatient(t, p, ts.Client(nil))
}

// TestSDKJWTBearer uses the RFC 7523 §2.1 grant: the server verifies the
// assertion against the JWKS that jwtassert produced and issues a token for
// the assertion's subject.
func TestSDKJWTBearer(t *testing.T) {
	p := startProvider(t, sdkOptions)
	signer := signerFor(t, p.JWTBearer)
	for _, subject := range []string{"service-user-7", "service-user-8"} {
		ts := newTokenSource(t, oauthclient.Config{
			TokenURL: p.TokenURL,
			ClientID: p.JWTBearer.ID,
			Auth:     oauthclient.ClientSecretBasic{Secret: p.JWTBearer.Secret},
			Grant:    oauthclient.JWTBearer{Signer: signer, Subject: subject},
			Scopes:   []string{"system/Patient.rs"},
		})
		resp := mustReadPatient(t, p, ts.Client(nil))
		if got := resp.Header.Get("X-Token-Subject"); got != subject {
			t.Errorf("token subject %q, want %q", got, subject)
		}
	}
	st := p.Stats(t)
	if st.TokenRequestsByGrant[grantJWTBearer] != 2 || st.TokenErrors != 0 {
		t.Errorf("jwt-bearer requests %d, errors %d (%v); want 2, 0", st.TokenRequestsByGrant[grantJWTBearer], st.TokenErrors, st.TokenErrorsByCode)
	}
}

// TestSDKTokenExchange exchanges the token of one TokenSource for a token
// for the FHIR server (RFC 8693).
func TestSDKTokenExchange(t *testing.T) {
	p := startProvider(t, sdkOptions)
	subject := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.Basic.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: p.Basic.Secret},
		Scopes:   []string{"system/Patient.rs"},
	})
	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.Exchange.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: p.Exchange.Secret},
		Grant:    oauthclient.TokenExchange{SubjectSource: subject, Audience: []string{p.FHIRBase}},
	})
	resp := mustReadPatient(t, p, ts.Client(nil))
	if got := resp.Header.Get("X-Token-Client"); got != p.Exchange.ID {
		t.Errorf("resource saw client %q, want %q", got, p.Exchange.ID)
	}
	if got := resp.Header.Get("X-Token-Subject"); got != p.Basic.ID {
		t.Errorf("exchanged token subject %q, want %q", got, p.Basic.ID)
	}
	st := p.Stats(t)
	if st.TokenRequestsByGrant[grantTokenExchange] != 1 || st.TokenRequestsByGrant["client_credentials"] != 1 {
		t.Errorf("token requests by grant = %v", st.TokenRequestsByGrant)
	}
}

// TestSDKTokenEndpointErrors: temporary failures are retried (honouring
// Retry-After), a wrong secret is permanent and never retried.
func TestSDKTokenEndpointErrors(t *testing.T) {
	fast := &oauthclient.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaxInterval: 50 * time.Millisecond}
	tests := []struct {
		name       string
		failures   int
		status     int
		retryAfter int
		secret     func(p *Provider) string
		wantErr    string // OAuth error code; "" = success
		wantTokens int    // token requests seen by the server
	}{
		{"503_retried", 2, http.StatusServiceUnavailable, 0, func(p *Provider) string { return p.Basic.Secret }, "", 3},
		{"429_retry_after", 1, http.StatusTooManyRequests, 1, func(p *Provider) string { return p.Basic.Secret }, "", 2},
		{"invalid_client_not_retried", 0, 0, 0, func(*Provider) string { return "wrong-secret-0123456789" }, "invalid_client", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProvider(t, sdkOptions)
			if tt.failures > 0 {
				p.Fail(t, tt.failures, tt.status, tt.retryAfter)
			}
			secret := tt.secret(p)
			ts := newTokenSource(t, oauthclient.Config{
				TokenURL: p.TokenURL,
				ClientID: p.Basic.ID,
				Auth:     oauthclient.ClientSecretBasic{Secret: secret},
				Scopes:   []string{"system/Patient.rs"},
				Retry:    fast,
			})
			_, err := ts.Token(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Token: %v", err)
			case tt.wantErr != "":
				var te *oauthclient.TokenError
				if !errors.As(err, &te) || te.ErrorCode != tt.wantErr || te.Temporary() {
					t.Fatalf("Token: %v, want permanent %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error text contains the client secret")
				}
			}
			st := p.Stats(t)
			if st.TokenRequests != tt.wantTokens || st.InjectedFailures != tt.failures {
				t.Errorf("token requests %d (injected failures %d), want %d (%d)", st.TokenRequests, st.InjectedFailures, tt.wantTokens, tt.failures)
			}
		})
	}
}

// TestSDKInvalidTokenRetry: when the resource server rejects a token with
// 401 invalid_token, the Transport gets a new token and retries once.
func TestSDKInvalidTokenRetry(t *testing.T) {
	p := startProvider(t, sdkOptions)
	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.RS384.ID,
		Auth:     oauthclient.PrivateKeyJWT{Signer: signerFor(t, p.RS384)},
		Scopes:   []string{"system/Patient.rs"},
	})
	client := ts.Client(nil)
	mustReadPatient(t, p, client)
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !p.RevokeToken(t, tok.AccessToken) {
		t.Fatalf("RevokeToken: token unknown to the server")
	}
	mustReadPatient(t, p, client)

	st := p.Stats(t)
	if st.TokenRequests != 2 || st.ResourceUnauthorized != 1 || st.ResourceRequests != 3 {
		t.Errorf("token requests %d, resource 401s %d, resource requests %d; want 2, 1, 3", st.TokenRequests, st.ResourceUnauthorized, st.ResourceRequests)
	}
}

// TestSDKRevoke revokes tokens at the provider's RFC 7009 endpoint.
func TestSDKRevoke(t *testing.T) {
	p := startProvider(t, sdkOptions)
	ctx := context.Background()

	t.Run("access_token", func(t *testing.T) {
		ts := newTokenSource(t, oauthclient.Config{
			TokenURL:      p.TokenURL,
			ClientID:      p.Post.ID,
			Auth:          oauthclient.ClientSecretPost{Secret: p.Post.Secret},
			Scopes:        []string{"system/Patient.rs"},
			RevocationURL: p.RevocationURL,
		})
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		if err := ts.Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if resp := p.getPatient(t, tok.AccessToken); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("revoked access token: status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("refresh_token", func(t *testing.T) {
		rt := p.RefreshToken(t, p.App.ID)
		ts := newTokenSource(t, oauthclient.Config{
			TokenURL:      p.TokenURL,
			ClientID:      p.App.ID,
			Auth:          oauthclient.ClientSecretBasic{Secret: p.App.Secret},
			Grant:         oauthclient.RefreshToken{Token: rt},
			RevocationURL: p.RevocationURL,
		})
		tok, err := ts.Token(ctx)
		if err != nil {
			t.Fatalf("Token: %v", err)
		}
		before := p.Stats(t)
		if err := ts.Revoke(ctx); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		if after := p.Stats(t); after.GrantsRevoked != before.GrantsRevoked+1 {
			t.Errorf("grants revoked %d→%d, want +1", before.GrantsRevoked, after.GrantsRevoked)
		}
		_, err = p.postToken(ctx, p.App, map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
		var te *tokenError
		if !errors.As(err, &te) || te.Code != "invalid_grant" {
			t.Errorf("refresh with revoked token: %v, want invalid_grant", err)
		}
	})
}
