package interop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// These tests use net/http (and jwtassert to sign assertions) only: they
// prove the interop server and the harness independently of oauthclient.

// TestProviderSmoke gets a client_credentials token with client_secret_basic
// and reads the protected resource with it.
func TestProviderSmoke(t *testing.T) {
	p := startProvider(t, ProviderOptions{AccessTokenTTL: 4 * time.Second})

	tr, err := p.postToken(context.Background(), p.Basic, url.Values{
		"grant_type": {"client_credentials"},
		"scope":      {"system/Patient.rs"},
	})
	if err != nil {
		t.Fatalf("token request: %v", err)
	}
	if tr.AccessToken == "" || !strings.EqualFold(tr.TokenType, "Bearer") {
		t.Fatalf("token response: token_type %q, access token %s", tr.TokenType, fingerprint(tr.AccessToken))
	}
	if tr.ExpiresIn != 4 {
		t.Errorf("expires_in = %d, want 4", tr.ExpiresIn)
	}
	if tr.Scope != "system/Patient.rs" {
		t.Errorf("scope = %q, want system/Patient.rs", tr.Scope)
	}

	resp := p.getPatient(t, tr.AccessToken)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /fhir/Patient: status %d", resp.StatusCode)
	}
	var bundle struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&bundle); err != nil || bundle.ResourceType != "Bundle" {
		t.Fatalf("GET /fhir/Patient: resourceType %q, err %v", bundle.ResourceType, err)
	}
	if got := resp.Header.Get("X-Token-Client"); got != p.Basic.ID {
		t.Errorf("resource saw client %q, want %q", got, p.Basic.ID)
	}

	st := p.Stats(t)
	if st.TokenRequests != 1 || st.TokenRequestsByClient[p.Basic.ID] != 1 || st.TokenRequestsByGrant["client_credentials"] != 1 {
		t.Errorf("stats: %d token requests (by client %v, by grant %v), want 1", st.TokenRequests, st.TokenRequestsByClient, st.TokenRequestsByGrant)
	}
	if st.ResourceRequests != 1 || st.ResourceUnauthorized != 0 {
		t.Errorf("stats: resource requests %d (unauthorized %d), want 1 (0)", st.ResourceRequests, st.ResourceUnauthorized)
	}
}

// TestProviderFeatures exercises each server feature the SDK tests rely on.
func TestProviderFeatures(t *testing.T) {
	ctx := context.Background()
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}

	tests := []struct {
		name string
		run  func(t *testing.T, p *Provider)
	}{
		{"client_secret_post", func(t *testing.T, p *Provider) {
			form := cloneValues(cc)
			form.Set("client_id", p.Post.ID)
			form.Set("client_secret", p.Post.Secret)
			// Post.Secret is sent in the form, so postToken must not add Basic auth.
			tr, err := p.postToken(ctx, Client{ID: p.Post.ID}, form)
			if err != nil {
				t.Fatalf("token request: %v", err)
			}
			if resp := p.getPatient(t, tr.AccessToken); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /fhir/Patient: status %d", resp.StatusCode)
			}
		}},
		{"private_key_jwt", func(t *testing.T, p *Provider) {
			for _, c := range []Client{p.RS384, p.ES384} {
				form := cloneValues(cc)
				form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				form.Set("client_assertion", signAssertion(t, c, jwtassert.Claims{
					Issuer: c.ID, Subject: c.ID, Audience: p.TokenURL,
				}))
				tr, err := p.postToken(ctx, Client{ID: c.ID}, form)
				if err != nil {
					t.Fatalf("%s: token request: %v", c.Alg, err)
				}
				if resp := p.getPatient(t, tr.AccessToken); resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: GET /fhir/Patient: status %d", c.Alg, resp.StatusCode)
				}
			}
			if got := p.Stats(t).TokenRequestsByClient; got[p.RS384.ID] != 1 || got[p.ES384.ID] != 1 {
				t.Errorf("token requests by client = %v", got)
			}
		}},
		{"refresh_rotation_and_reuse_detection", func(t *testing.T, p *Provider) {
			for _, c := range []Client{p.App, p.Public} {
				rt1 := p.RefreshToken(t, c.ID, "patient/Patient.rs")
				tr, err := p.postToken(ctx, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
				if err != nil {
					t.Fatalf("%s: refresh: %v", c.ID, err)
				}
				if tr.RefreshToken == "" || tr.RefreshToken == rt1 {
					t.Fatalf("%s: refresh token not rotated (%s)", c.ID, fingerprint(tr.RefreshToken))
				}
				if resp := p.getPatient(t, tr.AccessToken); resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: GET /fhir/Patient: status %d", c.ID, resp.StatusCode)
				}
				before := p.Stats(t)
				_, err = p.postToken(ctx, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt1}})
				var te *tokenError
				if !errors.As(err, &te) || te.Code != "invalid_grant" {
					t.Fatalf("%s: reuse of a rotated refresh token: err %v, want invalid_grant", c.ID, err)
				}
				after := p.Stats(t)
				if after.RefreshTokenReuse != before.RefreshTokenReuse+1 || after.GrantsRevoked != before.GrantsRevoked+1 {
					t.Errorf("%s: reuse detections %d→%d, grants revoked %d→%d; want +1 each", c.ID,
						before.RefreshTokenReuse, after.RefreshTokenReuse, before.GrantsRevoked, after.GrantsRevoked)
				}
				// The grant is gone: the rotated token is dead too.
				_, err = p.postToken(ctx, c, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
				if !errors.As(err, &te) || te.Code != "invalid_grant" {
					t.Fatalf("%s: refresh after grant revocation: err %v, want invalid_grant", c.ID, err)
				}
			}
		}},
		{"failure_injection", func(t *testing.T, p *Provider) {
			p.Fail(t, 2, http.StatusTooManyRequests, 3)
			for i := 0; i < 2; i++ {
				_, err := p.postToken(ctx, p.Basic, cc)
				var te *tokenError
				if !errors.As(err, &te) || te.Status != http.StatusTooManyRequests {
					t.Fatalf("request %d: err %v, want status 429", i, err)
				}
			}
			if _, err := p.postToken(ctx, p.Basic, cc); err != nil {
				t.Fatalf("request after injected failures: %v", err)
			}
			st := p.Stats(t)
			if st.TokenRequests != 3 || st.InjectedFailures != 2 || st.TokenErrors != 2 || st.TokenResponsesByStatus["429"] != 2 {
				t.Errorf("stats: requests %d, injected %d, errors %d, by status %v", st.TokenRequests, st.InjectedFailures, st.TokenErrors, st.TokenResponsesByStatus)
			}
		}},
		{"revoke_token", func(t *testing.T, p *Provider) {
			tr, err := p.postToken(ctx, p.Basic, cc)
			if err != nil {
				t.Fatalf("token request: %v", err)
			}
			if !p.RevokeToken(t, tr.AccessToken) {
				t.Fatalf("RevokeToken: token not found")
			}
			resp := p.getPatient(t, tr.AccessToken)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Fatalf("GET with revoked token: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}},
		{"jwt_bearer", func(t *testing.T, p *Provider) {
			claims := jwtassert.Claims{Issuer: p.JWTBearer.ID, Subject: "service-user-7", Audience: p.TokenURL}
			form := url.Values{
				"grant_type": {grantJWTBearer},
				"assertion":  {signAssertion(t, p.JWTBearer, claims)},
				"scope":      {"system/Patient.rs"},
			}
			tr, err := p.postToken(ctx, p.JWTBearer, form)
			if err != nil {
				t.Fatalf("jwt-bearer: %v", err)
			}
			resp := p.getPatient(t, tr.AccessToken)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Token-Subject") != "service-user-7" {
				t.Fatalf("GET /fhir/Patient: status %d, subject %q", resp.StatusCode, resp.Header.Get("X-Token-Subject"))
			}
			// The same assertion (same jti) must not be accepted twice.
			_, err = p.postToken(ctx, p.JWTBearer, form)
			var te *tokenError
			if !errors.As(err, &te) || te.Code != "invalid_grant" {
				t.Fatalf("replayed assertion: err %v, want invalid_grant", err)
			}
		}},
		{"token_exchange", func(t *testing.T, p *Provider) {
			subject, err := p.postToken(ctx, p.Basic, cc)
			if err != nil {
				t.Fatalf("subject token: %v", err)
			}
			tr, err := p.postToken(ctx, p.Exchange, url.Values{
				"grant_type":         {grantTokenExchange},
				"subject_token":      {subject.AccessToken},
				"subject_token_type": {tokenTypeAccess},
				"audience":           {p.FHIRBase},
			})
			if err != nil {
				t.Fatalf("token exchange: %v", err)
			}
			if tr.IssuedTokenType != tokenTypeAccess || tr.AccessToken == subject.AccessToken {
				t.Fatalf("token exchange: issued_token_type %q", tr.IssuedTokenType)
			}
			resp := p.getPatient(t, tr.AccessToken)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Token-Client") != p.Exchange.ID {
				t.Fatalf("GET /fhir/Patient: status %d, client %q", resp.StatusCode, resp.Header.Get("X-Token-Client"))
			}
			// A token for another audience is not accepted by the FHIR server.
			other, err := p.postToken(ctx, p.Exchange, url.Values{
				"grant_type":         {grantTokenExchange},
				"subject_token":      {subject.AccessToken},
				"subject_token_type": {tokenTypeAccess},
				"audience":           {"https://other.example/api"},
			})
			if err != nil {
				t.Fatalf("token exchange for another audience: %v", err)
			}
			if resp := p.getPatient(t, other.AccessToken); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("GET with a token for another audience: status %d, want 401", resp.StatusCode)
			}
		}},
		{"discovery", func(t *testing.T, p *Provider) {
			for _, path := range []string{p.FHIRBase + "/.well-known/smart-configuration", p.Issuer + "/.well-known/oauth-authorization-server"} {
				resp, err := http.Get(path)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				var meta struct {
					Issuer        string `json:"issuer"`
					TokenEndpoint string `json:"token_endpoint"`
				}
				err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&meta)
				resp.Body.Close()
				if err != nil || meta.TokenEndpoint != p.TokenURL || meta.Issuer != p.Issuer {
					t.Errorf("GET %s: issuer %q, token_endpoint %q, err %v", path, meta.Issuer, meta.TokenEndpoint, err)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, startProvider(t, ProviderOptions{}))
		})
	}
}
