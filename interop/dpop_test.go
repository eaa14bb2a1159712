package interop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
)

// senderOptions configures an interop server for sender-constrained
// tokens: the clients' metadata and the DPoP and TLS settings that
// provider/server.mjs reads.
type senderOptions struct {
	AccessTokenTTL    int              // seconds
	Clients           []map[string]any // RFC 7591 client metadata
	DPoPNonce         bool             // the token endpoint requires DPoP nonces
	ResourceDPoPNonce bool             // the resource requires DPoP nonces
	TLS               map[string]string
}

// senderProvider is a running interop server for sender-constrained tokens.
type senderProvider struct {
	Issuer   string // http base URL
	TokenURL string
	AuthURL  string
	FHIRBase string
	MTLSBase string // https base URL ("" without TLS)
	http     *http.Client
}

// startSenderProvider starts provider/server.mjs with opts for the test
// and stops it when the test ends.
func startSenderProvider(t *testing.T, opts senderOptions) *senderProvider {
	t.Helper()
	node, script := requireProviderDeps(t)
	cfg := map[string]any{
		"access_token_ttl": opts.AccessTokenTTL, "refresh_token_ttl": 3600, "clients": opts.Clients,
		"dpop_nonce": opts.DPoPNonce, "resource_dpop_nonce": opts.ResourceDPoPNonce,
	}
	if opts.TLS != nil {
		cfg["tls"] = opts.TLS
	}
	r := runProviderProcess(t, node, script, cfg)
	return &senderProvider{Issuer: r.Issuer, TokenURL: r.TokenEndpoint, AuthURL: r.AuthorizationEndpoint, FHIRBase: r.FHIRBase, MTLSBase: r.MTLSBase, http: &http.Client{Timeout: 30 * time.Second}}
}

// stats reads the server's counters.
func (p *senderProvider) stats(t *testing.T) map[string]any {
	t.Helper()
	resp, err := p.http.Get(p.Issuer + "/test/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func statInt(m map[string]any, k string) int {
	f, _ := m[k].(float64)
	return int(f)
}

// getPatients reads /fhir/Patient with client and returns the status and
// the x-token-bound header.
func getPatients(t *testing.T, client *http.Client, base string) (int, string) {
	t.Helper()
	resp, err := client.Get(base + "/Patient?_id=p1")
	if err != nil {
		t.Fatalf("GET Patient: %v", withoutURL(err))
	}
	defer drain(resp)
	return resp.StatusCode, resp.Header.Get("X-Token-Bound")
}

// TestDPoPClientCredentialsInterop: client credentials with private_key_jwt
// and DPoP against oidc-provider requiring nonces at the token endpoint,
// and a resource that checks the proof and requires its own nonce.
func TestDPoPClientCredentialsInterop(t *testing.T) {
	keyPEM := generatePEM(t, "ES256")
	jwks, err := publicJWKS(keyPEM, "dpop-cc-1", "ES256")
	if err != nil {
		t.Fatal(err)
	}
	p := startSenderProvider(t, senderOptions{AccessTokenTTL: 300, DPoPNonce: true, ResourceDPoPNonce: true, Clients: []map[string]any{{
		"client_id": "dpop-cc", "jwks": json.RawMessage(jwks), "token_endpoint_auth_method": "private_key_jwt",
		"token_endpoint_auth_signing_alg": "ES256", "grant_types": []string{"client_credentials"},
		"response_types": []string{}, "redirect_uris": []string{}, "dpop_bound_access_tokens": true,
	}}})
	signer, err := jwtassert.ParsePEM(keyPEM, jwtassert.Options{KeyID: "dpop-cc-1", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"ES256", "EdDSA", "PS256"} {
		t.Run(alg, func(t *testing.T) {
			dpopKey, err := jwtassert.GenerateKey(alg)
			if err != nil {
				t.Fatal(err)
			}
			ts, err := oauthclient.NewTokenSource(oauthclient.Config{
				TokenURL: p.TokenURL, ClientID: "dpop-cc", Auth: oauthclient.PrivateKeyJWT{Signer: signer},
				Scopes: []string{"system/Patient.rs"}, DPoPKey: dpopKey,
			})
			if err != nil {
				t.Fatal(err)
			}
			before := p.stats(t)
			tok, err := ts.Token(context.Background())
			if err != nil {
				t.Fatalf("token: %v", err)
			}
			if tok.Type() != "DPoP" {
				t.Fatalf("token type %q, want DPoP", tok.Type())
			}
			client := ts.Client(nil)
			for i := 0; i < 3; i++ {
				if status, bound := getPatients(t, client, p.FHIRBase); status != 200 || bound != "jkt" {
					t.Fatalf("request %d: status %d, binding %q", i, status, bound)
				}
			}
			after := p.stats(t)
			if n := statInt(after, "token_requests") - statInt(before, "token_requests"); n != 2 {
				t.Errorf("token requests: %d, want 2 (one nonce retry with a new assertion)", n)
			}
			if n := statInt(after, "resource_dpop_nonce_challenges") - statInt(before, "resource_dpop_nonce_challenges"); n != 1 {
				t.Errorf("resource nonce challenges: %d, want 1 (the nonce is remembered)", n)
			}
			if n := statInt(after, "resource_dpop_accepted") - statInt(before, "resource_dpop_accepted"); n != 3 {
				t.Errorf("resource requests accepted with a proof: %d, want 3", n)
			}
		})
	}
}

// TestDPoPPublicClientRefreshInterop: a public client logs in with DPoP
// (dpop_jkt, a proof at the code exchange); its DPoP-bound refresh token
// rotates across three access-token lifetimes, each token used at the
// resource with a proof and nonce; a source with another key never sends
// the bound refresh token.
func TestDPoPPublicClientRefreshInterop(t *testing.T) {
	p := startSenderProvider(t, senderOptions{AccessTokenTTL: 3, DPoPNonce: true, ResourceDPoPNonce: true, Clients: []map[string]any{{
		"client_id": "dpop-public", "application_type": "native", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"redirect_uris": []string{"http://127.0.0.1/callback"}, "dpop_bound_access_tokens": true,
	}}})
	dpopKey, err := jwtassert.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	approver := &Provider{Issuer: p.Issuer}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tok, err := oauthclient.Login(ctx, oauthclient.LoginConfig{
		AuthURL: p.AuthURL, TokenURL: p.TokenURL, ClientID: "dpop-public", Out: io.Discard,
		Scopes: []string{"openid", "offline_access", "patient/Patient.rs"}, AuthParams: url.Values{"prompt": {"consent"}},
		DPoPKey: dpopKey,
		OpenBrowser: func(authURL string) error {
			go func() {
				loc, err := approver.Approve(authURL)
				if err != nil {
					t.Errorf("approve: %v", withoutURL(err))
					return
				}
				if resp, err := http.Get(loc.String()); err == nil {
					drain(resp)
				}
			}()
			return nil
		},
	})
	if err != nil {
		t.Fatalf("login: %v", withoutURL(err))
	}
	if tok.Type() != "DPoP" || tok.RefreshToken == "" {
		t.Fatalf("login: type %q, refresh token %v", tok.Type(), tok.RefreshToken != "")
	}
	cache, err := tokencache.NewFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: p.TokenURL, ClientID: "dpop-public", Grant: oauthclient.RefreshToken{Token: tok.RefreshToken}, DPoPKey: dpopKey,
		Cache: cache, CacheKey: "interop-user",
	})
	if err != nil {
		t.Fatal(err)
	}
	client := ts.Client(nil)
	seen := map[string]bool{fingerprint(tok.AccessToken): true}
	for lifetime := 1; lifetime <= 3; lifetime++ {
		cur, err := ts.Token(ctx)
		if err != nil {
			t.Fatalf("lifetime %d: %v", lifetime, err)
		}
		if seen[fingerprint(cur.AccessToken)] || cur.Type() != "DPoP" {
			t.Fatalf("lifetime %d: token reused or not DPoP (%q)", lifetime, cur.Type())
		}
		seen[fingerprint(cur.AccessToken)] = true
		if status, bound := getPatients(t, client, p.FHIRBase); status != 200 || bound != "jkt" {
			t.Fatalf("lifetime %d: status %d, binding %q", lifetime, status, bound)
		}
		time.Sleep(time.Until(cur.Expiry)) // the next call needs a new token
	}
	st := p.stats(t)
	if n := statInt(st, "refresh_tokens_consumed"); n < 3 {
		t.Errorf("refresh tokens consumed: %d, want at least 3 (rotation)", n)
	}
	if n := statInt(st, "refresh_token_reuse"); n != 0 {
		t.Errorf("refresh token reuse detected %d times", n)
	}

	// Another key finds the bound refresh token in the cache and refuses
	// to send it.
	otherKey, err := jwtassert.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	other, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: p.TokenURL, ClientID: "dpop-public", Grant: oauthclient.RefreshToken{}, DPoPKey: otherKey,
		Cache: cache, CacheKey: "interop-user",
	})
	if err != nil {
		t.Fatal(err)
	}
	expiry := tokExpiry(t, ts) // the newest refresh token is in the cache
	ts.Close()                 // no background refresh from now on
	st = p.stats(t)
	time.Sleep(time.Until(expiry)) // its access token is of no use either way
	if _, err := other.Token(ctx); !errors.Is(err, oauthclient.ErrDPoPKeyMismatch) {
		t.Fatalf("other key: got %v, want ErrDPoPKeyMismatch", err)
	}
	if n := statInt(p.stats(t), "token_requests") - statInt(st, "token_requests"); n != 0 {
		t.Fatalf("%d token requests with the refresh token bound to another key", n)
	}
}

// tokExpiry is the expiry of ts's current token.
func tokExpiry(t *testing.T, ts *oauthclient.TokenSource) time.Time {
	t.Helper()
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tok.Expiry
}
