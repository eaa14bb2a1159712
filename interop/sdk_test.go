package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/testclock"
	"github.com/oauthkit/oauthkit/oauthclient"
)

func newTokenSource(t testing.TB, cfg oauthclient.Config) *oauthclient.TokenSource {
	t.Helper()
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		t.Fatalf("NewTokenSource: %v", err)
	}
	return ts
}

// readPatient GETs /fhir/Patient through client and returns the response
// with its body read. It does not use testing.TB, so it may run on any
// goroutine.
func readPatient(p *Provider, client *http.Client) (*http.Response, string, error) {
	resp, err := client.Get(p.FHIRBase + "/Patient")
	if err != nil {
		return nil, "", fmt.Errorf("GET /fhir/Patient: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("read /fhir/Patient: %w", err)
	}
	return resp, string(b), nil
}

func mustReadPatient(t testing.TB, p *Provider, client *http.Client) *http.Response {
	t.Helper()
	resp, body, err := readPatient(p, client)
	if err != nil {
		t.Fatal(err)
	}
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
	p := startProvider(t, ProviderOptions{})
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
	p := startProvider(t, ProviderOptions{})
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
	p := startProvider(t, ProviderOptions{})
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
	p := startProvider(t, ProviderOptions{})
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

// TestSDKRevoke revokes tokens at the provider's RFC 7009 endpoint.
func TestSDKRevoke(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
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
