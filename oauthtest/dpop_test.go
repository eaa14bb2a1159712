package oauthtest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// prover builds DPoP proofs by hand, so that tests can break each part.
type prover struct {
	key *ecdsa.PrivateKey
}

func newProver(t *testing.T) *prover {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &prover{key: k}
}

// proof signs claims (jti and iat filled unless set) with header typ.
func (p *prover) proof(t *testing.T, typ string, claims map[string]any) string {
	t.Helper()
	if _, ok := claims["jti"]; !ok {
		var b [16]byte
		rand.Read(b[:])
		claims["jti"] = base64.RawURLEncoding.EncodeToString(b[:])
	}
	if _, ok := claims["iat"]; !ok {
		claims["iat"] = time.Now().Unix()
	}
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ))
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: p.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ath(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (p *prover) jkt(t *testing.T) string {
	tp, err := (&jose.JSONWebKey{Key: &p.key.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// tokenWithProof asks for a client_credentials token with the given proof
// ("" none) and returns the status, the decoded body and the headers.
func tokenWithProof(t *testing.T, srv *oauthtest.Server, proof string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("svc", "svc-secret")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func newDPoPServer(t *testing.T) *oauthtest.Server {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	if err := srv.RegisterClient(oauthtest.Client{ID: "svc", Secret: "svc-secret", AuthMethod: oauthtest.AuthClientSecretBasic}); err != nil {
		t.Fatal(err)
	}
	return srv
}

// TestDPoPTokenEndpointChecks: the token endpoint binds tokens to a valid
// proof and refuses each kind of bad proof with invalid_dpop_proof.
func TestDPoPTokenEndpointChecks(t *testing.T) {
	srv := newDPoPServer(t)
	p := newProver(t)
	good := func() map[string]any { return map[string]any{"htm": "POST", "htu": srv.TokenURL()} }
	replayed := p.proof(t, "dpop+jwt", good())
	if status, body, _ := tokenWithProof(t, srv, replayed); status != 200 || body["token_type"] != "DPoP" {
		t.Fatalf("valid proof: status %d, token_type %v", status, body["token_type"])
	}
	if status, body, _ := tokenWithProof(t, srv, ""); status != 200 || body["token_type"] != "Bearer" {
		t.Fatalf("no proof: status %d, token_type %v", status, body["token_type"])
	}
	withClaim := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	for _, tc := range []struct {
		name  string
		proof string
	}{
		{"typ JWT", p.proof(t, "JWT", good())},
		{"htm GET", p.proof(t, "dpop+jwt", withClaim("htm", "GET"))},
		{"htu elsewhere", p.proof(t, "dpop+jwt", withClaim("htu", srv.URL+"/other"))},
		{"iat old", p.proof(t, "dpop+jwt", withClaim("iat", time.Now().Add(-10*time.Minute).Unix()))},
		{"iat future", p.proof(t, "dpop+jwt", withClaim("iat", time.Now().Add(10*time.Minute).Unix()))},
		{"no jti", p.proof(t, "dpop+jwt", withClaim("jti", ""))},
		{"replayed jti", replayed},
		{"not a JWS", "not.a.proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body, _ := tokenWithProof(t, srv, tc.proof); status != 400 || body["error"] != "invalid_dpop_proof" {
				t.Fatalf("status %d, error %v; want 400 invalid_dpop_proof", status, body["error"])
			}
		})
	}
	// A query in htu is ignored (RFC 9449 §4.3).
	if status, _, _ := tokenWithProof(t, srv, p.proof(t, "dpop+jwt", withClaim("htu", srv.TokenURL()+"?q=1"))); status != 200 {
		t.Fatalf("htu with query: status %d", status)
	}
}

// TestDPoPNonces: with nonces required, a proof without the current nonce
// is answered use_dpop_nonce and a DPoP-Nonce, at the token endpoint (400)
// and the resource (401); a rotated nonce is asked for again.
func TestDPoPNonces(t *testing.T) {
	srv := newDPoPServer(t)
	srv.SetDPoPNonceRequired(true, true)
	p := newProver(t)
	status, body, h := tokenWithProof(t, srv, p.proof(t, "dpop+jwt", map[string]any{"htm": "POST", "htu": srv.TokenURL()}))
	nonce := h.Get("DPoP-Nonce")
	if status != 400 || body["error"] != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("no nonce: status %d, error %v, nonce sent %v", status, body["error"], nonce != "")
	}
	status, body, _ = tokenWithProof(t, srv, p.proof(t, "dpop+jwt", map[string]any{"htm": "POST", "htu": srv.TokenURL(), "nonce": nonce}))
	tok, _ := body["access_token"].(string)
	if status != 200 || tok == "" {
		t.Fatalf("with nonce: status %d", status)
	}
	get := func(claims map[string]any) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.FHIRBase()+"/Patient", nil)
		req.Header.Set("Authorization", "DPoP "+tok)
		claims["htm"], claims["htu"], claims["ath"] = "GET", srv.FHIRBase()+"/Patient", ath(tok)
		req.Header.Set("DPoP", p.proof(t, "dpop+jwt", claims))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, resp.Header.Get("WWW-Authenticate")
	}
	resp, challenge := get(map[string]any{})
	if resp.StatusCode != 401 || !strings.Contains(challenge, `error="use_dpop_nonce"`) || resp.Header.Get("DPoP-Nonce") != nonce {
		t.Fatalf("resource without nonce: status %d, challenge %q", resp.StatusCode, challenge)
	}
	if resp, _ = get(map[string]any{"nonce": nonce}); resp.StatusCode != 200 {
		t.Fatalf("resource with nonce: status %d", resp.StatusCode)
	}
	srv.RotateDPoPNonce()
	if resp, _ = get(map[string]any{"nonce": nonce}); resp.StatusCode != 401 || resp.Header.Get("DPoP-Nonce") == nonce {
		t.Fatalf("old nonce after rotation: status %d", resp.StatusCode)
	}
}

// TestDPoPResourceChecks: the resource accepts a DPoP-bound token only with
// the DPoP scheme and a valid proof of the bound key for this request.
func TestDPoPResourceChecks(t *testing.T) {
	srv := newDPoPServer(t)
	p := newProver(t)
	_, body, _ := tokenWithProof(t, srv, p.proof(t, "dpop+jwt", map[string]any{"htm": "POST", "htu": srv.TokenURL()}))
	tok, _ := body["access_token"].(string)
	if tok == "" {
		t.Fatal("no token")
	}
	other := newProver(t)
	if p.jkt(t) == other.jkt(t) {
		t.Fatal("two keys with one thumbprint")
	}
	target := srv.FHIRBase() + "/Patient"
	good := func() map[string]any { return map[string]any{"htm": "GET", "htu": target, "ath": ath(tok)} }
	withClaim := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	for _, tc := range []struct {
		name, scheme, proof string
		status              int
		code                string
	}{
		{"valid", "DPoP", p.proof(t, "dpop+jwt", good()), 200, ""},
		{"bearer scheme", "Bearer", "", 401, "invalid_token"},
		{"no proof", "DPoP", "", 401, "invalid_dpop_proof"},
		{"wrong ath", "DPoP", p.proof(t, "dpop+jwt", withClaim("ath", ath("other"))), 401, "invalid_dpop_proof"},
		{"no ath", "DPoP", p.proof(t, "dpop+jwt", withClaim("ath", "")), 401, "invalid_dpop_proof"},
		{"other key", "DPoP", other.proof(t, "dpop+jwt", good()), 401, "invalid_token"},
		{"htu of another resource", "DPoP", p.proof(t, "dpop+jwt", withClaim("htu", srv.FHIRBase()+"/Patient/p1")), 401, "invalid_dpop_proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, target, nil)
			req.Header.Set("Authorization", tc.scheme+" "+tok)
			if tc.proof != "" {
				req.Header.Set("DPoP", tc.proof)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			challenge := resp.Header.Get("WWW-Authenticate")
			if resp.StatusCode != tc.status || (tc.code != "" && !strings.Contains(challenge, `error="`+tc.code+`"`)) {
				t.Fatalf("status %d, challenge %q; want %d %s", resp.StatusCode, challenge, tc.status, tc.code)
			}
		})
	}
}
