package oauthclient

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

func newDPoPKey(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	k, err := jwtassert.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// decodedProof is a DPoP proof as a server sees it, verified with its
// embedded key.
type decodedProof struct {
	typ, alg string
	jkt      string
	claims   map[string]any
}

func decodeProof(t *testing.T, proof string) decodedProof {
	t.Helper()
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.EdDSA})
	if err != nil {
		t.Fatalf("proof does not parse: %v", err)
	}
	h := jws.Signatures[0].Protected
	if h.JSONWebKey == nil || !h.JSONWebKey.IsPublic() {
		t.Fatal("proof has no public jwk")
	}
	payload, err := jws.Verify(h.JSONWebKey)
	if err != nil {
		t.Fatalf("proof signature: %v", err)
	}
	var d decodedProof
	d.typ, _ = h.ExtraHeaders[jose.HeaderType].(string)
	d.alg = h.Algorithm
	tp, _ := h.JSONWebKey.Thumbprint(crypto.SHA256)
	d.jkt = base64.RawURLEncoding.EncodeToString(tp)
	if err := json.Unmarshal(payload, &d.claims); err != nil {
		t.Fatal(err)
	}
	return d
}

func writeTyped(w http.ResponseWriter, tok, typ, refresh string) {
	m := map[string]any{"access_token": tok, "token_type": typ, "expires_in": 3600}
	if refresh != "" {
		m["refresh_token"] = refresh
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

// TestDPoPEndToEndOauthtest runs client credentials with private_key_jwt
// and DPoP against oauthtest requiring nonces at the token endpoint and
// the resource: one nonce retry each (with a new assertion: oauthtest
// refuses a replayed jti), then none.
func TestDPoPEndToEndOauthtest(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.SetDPoPNonceRequired(true, true)
	signer := newSigner(t, "ES256", "k1")
	jwks, err := jwtassert.JWKS(signer)
	if err != nil {
		t.Fatal(err)
	}
	register(t, srv, oauthtest.Client{ID: "svc", AuthMethod: oauthtest.AuthPrivateKeyJWT, JWKS: jwks})
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "svc", Auth: PrivateKeyJWT{Signer: signer}, Scopes: []string{"system/Patient.rs"}, DPoPKey: newDPoPKey(t, "ES256")})
	tok, err := ts.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Type() != "DPoP" {
		t.Fatalf("token type %q, want DPoP", tok.Type())
	}
	if n := srv.Stats().TokenRequests; n != 2 {
		t.Fatalf("token requests = %d, want 2 (one nonce retry)", n)
	}
	client := ts.Client(nil)
	for i := 0; i < 3; i++ {
		readPatients(t, srv, ts)
	}
	st := srv.Stats()
	if st.ResourceRequests != 4 || st.ResourceRejected != 1 {
		t.Fatalf("resource requests %d, rejected %d; want 4 and 1 (one nonce challenge)", st.ResourceRequests, st.ResourceRejected)
	}
	// A rotated nonce costs one replay, not an error.
	srv.RotateDPoPNonce()
	resp, err := client.Get(srv.FHIRBase() + "/Patient?_id=p1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after nonce rotation: status %d", resp.StatusCode)
	}
	// A bearer use of the bound token is refused by the resource.
	req, _ := http.NewRequest("GET", srv.FHIRBase()+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bound token as bearer: status %d, want 401", resp.StatusCode)
	}
}

// TestDPoPProofClaims checks every proof the Transport sends: typ, alg,
// public jwk, fresh jti, htm, htu without query or fragment, iat from the
// source's clock, ath of the token, and the nonce once one is known.
func TestDPoPProofClaims(t *testing.T) {
	key := newDPoPKey(t, "ES256")
	clock := newFakeClock()
	var mu sync.Mutex
	var proofs []string
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		proofs = append(proofs, r.Header.Get("DPoP"))
		mu.Unlock()
		writeTyped(w, "tok-"+itoa(n), "DPoP", "")
	})
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		proofs = append(proofs, r.Header.Get("DPoP"))
		mu.Unlock()
		w.Header().Set("DPoP-Nonce", "nonce-1")
		w.WriteHeader(200)
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL + "/token?x=1", ClientID: "c", DPoPKey: key, Now: clock.Now})
	client := ts.Client(nil)
	for _, path := range []string{"/Patient?name=a#frag", "/Patient/p1"} {
		resp, err := client.Get(rs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(proofs) != 3 {
		t.Fatalf("%d proofs, want 3", len(proofs))
	}
	jtis := map[any]bool{}
	want := []struct{ htm, htu, ath, nonce string }{
		{"POST", tokSrv.URL + "/token", "", ""},
		{"GET", rs.URL + "/Patient", accessTokenHash("tok-1"), ""},
		{"GET", rs.URL + "/Patient/p1", accessTokenHash("tok-1"), "nonce-1"},
	}
	p0, _ := newDPoPProver(key)
	for i, w := range want {
		d := decodeProof(t, proofs[i])
		if d.typ != "dpop+jwt" || d.alg != "ES256" || d.jkt != p0.jkt {
			t.Errorf("proof %d: typ %q alg %q, thumbprint match %v", i, d.typ, d.alg, d.jkt == p0.jkt)
		}
		c := d.claims
		jti, _ := c["jti"].(string)
		if raw, _ := base64.RawURLEncoding.DecodeString(jti); len(raw) < 16 || jtis[jti] {
			t.Errorf("proof %d: jti not fresh or shorter than 128 bits", i)
		}
		jtis[jti] = true
		if c["htm"] != w.htm || c["htu"] != w.htu {
			t.Errorf("proof %d: htm %v htu %v, want %s %s", i, c["htm"], c["htu"], w.htm, w.htu)
		}
		if iat, _ := c["iat"].(float64); int64(iat) != clock.Now().Unix() {
			t.Errorf("proof %d: iat %v not from the source's clock", i, c["iat"])
		}
		if ath, _ := c["ath"].(string); ath != w.ath {
			t.Errorf("proof %d: ath mismatch (present: %v)", i, ath != "")
		}
		if n, _ := c["nonce"].(string); n != w.nonce {
			t.Errorf("proof %d: nonce %q, want %q", i, n, w.nonce)
		}
	}
	if got := rs.lastAuth.Load().(string); !strings.HasPrefix(got, "DPoP ") {
		t.Errorf("Authorization scheme: %q", strings.SplitN(got, " ", 2)[0])
	}
}

// TestDPoPTokenWithoutKey: a DPoP-bound token issued to a source without
// a DPoP key is refused with a typed error.
func TestDPoPTokenWithoutKey(t *testing.T) {
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeTyped(w, "tok-"+itoa(n), "DPoP", "")
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c"})
	_, err := ts.Token(context.Background())
	var te *TokenError
	if !errors.Is(err, ErrDPoPNotConfigured) || !errors.Is(err, ErrUnsupportedTokenType) || !errors.As(err, &te) {
		t.Fatalf("got %v, want ErrDPoPNotConfigured in a *TokenError", err)
	}
}

// TestDPoPBearerAnswerUsedAsBearer: a server that answers Bearer to a DPoP
// token request issued an unbound token; the source uses it as a bearer
// token, without proofs (RFC 9449 §5).
func TestDPoPBearerAnswerUsedAsBearer(t *testing.T) {
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if r.Header.Get("DPoP") == "" {
			t.Error("token request without a proof")
		}
		writeTyped(w, "tok-"+itoa(n), "Bearer", "")
	})
	var sawProof bool
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		sawProof = r.Header.Get("DPoP") != ""
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c", DPoPKey: newDPoPKey(t, "EdDSA")})
	resp, err := ts.Client(nil).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := rs.lastAuth.Load().(string); !strings.HasPrefix(got, "Bearer ") || sawProof {
		t.Fatalf("scheme %q, proof sent %v; want Bearer without proof", strings.SplitN(got, " ", 2)[0], sawProof)
	}
}

// TestDPoPCachedTokenOtherKey: a source with another key (or none) never
// uses an access token or a refresh token bound to a key from the cache.
func TestDPoPCachedTokenOtherKey(t *testing.T) {
	var mu sync.Mutex
	var sentRefresh []string
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		if rt := r.PostForm.Get("refresh_token"); rt != "" {
			sentRefresh = append(sentRefresh, rt)
		}
		mu.Unlock()
		writeTyped(w, "tok-"+itoa(n), "DPoP", "rt-"+itoa(n))
	})
	cache, err := tokencache.NewFile(t.TempDir()) // the thumbprint goes through the entry codec
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{TokenURL: tokSrv.URL, ClientID: "c", Auth: NoClientAuth{}, Grant: RefreshToken{Token: "rt-0"}, Cache: cache, CacheKey: "user-1", DPoPKey: newDPoPKey(t, "ES256")}
	first := newTS(t, cfg)
	if _, err := first.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	e, err := cache.Load(context.Background(), "user-1")
	if err != nil || e.Thumbprint != first.fetcher.thumbprint() || !isDPoPType(e.TokenType) {
		t.Fatalf("cache entry: thumbprint recorded %v, type %q, err %v", e != nil && e.Thumbprint != "", e.TokenType, err)
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
	}{{"other key", newDPoPKey(t, "ES256")}, {"no key", nil}} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.Grant, c.DPoPKey = RefreshToken{}, tc.key
			other := newTS(t, c)
			_, err := other.Token(context.Background())
			if !errors.Is(err, ErrDPoPKeyMismatch) {
				t.Fatalf("got %v, want ErrDPoPKeyMismatch", err)
			}
		})
	}
	mu.Lock()
	ok := len(sentRefresh) == 1 && sentRefresh[0] == "rt-0"
	mu.Unlock()
	if !ok {
		t.Fatal("a refresh token other than the initial one was sent")
	}

	// Client credentials with another key: the bound access token is not
	// adopted; the source gets its own.
	cc := Config{TokenURL: tokSrv.URL, ClientID: "c", Cache: cache, CacheKey: "cc", DPoPKey: newDPoPKey(t, "ES256")}
	a := newTS(t, cc)
	ta, err := a.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cc.DPoPKey = newDPoPKey(t, "ES256")
	b := newTS(t, cc)
	tb, err := b.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ta.AccessToken == tb.AccessToken {
		t.Fatalf("%s bound to another key was adopted from the cache", serial(ta))
	}
}

// TestDPoPAlgsExcluded: a resource server whose DPoP challenge excludes
// the key's algorithm gives a *DPoPAlgError.
func TestDPoPAlgsExcluded(t *testing.T) {
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeTyped(w, "tok-"+itoa(n), "DPoP", "")
	})
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `DPoP algs="RS256 PS256", error="invalid_dpop_proof"`)
		w.WriteHeader(401)
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c", DPoPKey: newDPoPKey(t, "ES256")})
	_, err := ts.Client(nil).Get(rs.URL)
	var ae *DPoPAlgError
	if !errors.As(err, &ae) || ae.Algorithm != "ES256" {
		t.Fatalf("got %v, want *DPoPAlgError for ES256", err)
	}
}

// TestDPoPInvalidTokenRetried: a DPoP invalid_token challenge is handled
// like a Bearer one: a new token, one replay with a new proof.
func TestDPoPInvalidTokenRetried(t *testing.T) {
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeTyped(w, "tok-"+itoa(n), "DPoP", "")
	})
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "DPoP tok-1" {
			w.Header().Set("WWW-Authenticate", `DPoP error="invalid_token"`)
			w.WriteHeader(401)
		}
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c", DPoPKey: newDPoPKey(t, "ES256")})
	resp, err := ts.Client(nil).Get(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || tokSrv.requests() != 2 || rs.requests.Load() != 2 {
		t.Fatalf("status %d, token requests %d, resource requests %d", resp.StatusCode, tokSrv.requests(), rs.requests.Load())
	}
}

// TestDPoPNonceReplayOnlyWithReplayableBody: a nonce challenge is answered
// by one replay when the body can be replayed, never for a one-shot body.
func TestDPoPNonceReplayOnlyWithReplayableBody(t *testing.T) {
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		writeTyped(w, "tok-"+itoa(n), "DPoP", "")
	})
	var mu sync.Mutex
	nonce := "n-1"
	rs := newResourceServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		var c struct {
			Nonce string `json:"nonce"`
		}
		parts := strings.Split(r.Header.Get("DPoP"), ".")
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(raw, &c)
		if c.Nonce != nonce || string(body) != "payload" {
			w.Header().Set("DPoP-Nonce", nonce)
			w.Header().Set("WWW-Authenticate", `DPoP error="use_dpop_nonce"`)
			w.WriteHeader(401)
		}
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c", DPoPKey: newDPoPKey(t, "ES256")})
	client := ts.Client(nil)
	resp, err := client.Post(rs.URL, "text/plain", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || rs.requests.Load() != 2 {
		t.Fatalf("replayable: status %d after %d requests", resp.StatusCode, rs.requests.Load())
	}
	mu.Lock()
	nonce = "n-2"
	mu.Unlock()
	resp, err = client.Post(rs.URL, "text/plain", io.NopCloser(strings.NewReader("payload")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || rs.requests.Load() != 3 {
		t.Fatalf("one-shot body: status %d after %d requests; want the 401 without replay", resp.StatusCode, rs.requests.Load())
	}
}

// TestDPoPProofNotInErrors: a token endpoint that echoes the request's
// proof and assertion in its error gets them redacted.
func TestDPoPProofNotInErrors(t *testing.T) {
	var mu sync.Mutex
	var proof string
	tokSrv := newTokenServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		mu.Lock()
		proof = r.Header.Get("DPoP")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_dpop_proof", "error_description": "bad proof " + r.Header.Get("DPoP")})
	})
	ts := newTS(t, Config{TokenURL: tokSrv.URL, ClientID: "c", DPoPKey: newDPoPKey(t, "ES256")})
	_, err := ts.Token(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if err == nil || proof == "" || strings.Contains(err.Error(), proof) {
		t.Fatalf("error missing, or it contains the proof (proof sent: %v)", proof != "")
	}
}

// TestLoginDPoP: Login sends dpop_jkt and exchanges the code with a proof;
// the tokens are DPoP-bound and a source with the same key refreshes them.
func TestLoginDPoP(t *testing.T) {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.SetDPoPNonceRequired(true, false)
	register(t, srv, oauthtest.Client{ID: "cli", AuthMethod: oauthtest.AuthNone, RedirectURIs: []string{"http://127.0.0.1/callback"}})
	key := newDPoPKey(t, "ES256")
	p, _ := newDPoPProver(key)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var jkt string
	open := browser(t, nil)
	cfg := LoginConfig{AuthURL: srv.AuthorizeURL(), TokenURL: srv.TokenURL(), ClientID: "cli", Scopes: []string{"offline_access", "patient/Patient.rs"}, Out: io.Discard,
		DPoPKey: key, OpenBrowser: func(u string) error {
			pu, _ := url.Parse(u)
			jkt = pu.Query().Get("dpop_jkt")
			return open(u)
		}}
	tok, err := Login(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if jkt != p.jkt || tok.Type() != "DPoP" || tok.RefreshToken == "" {
		t.Fatalf("dpop_jkt sent: %v, type %q, refresh token: %v", jkt == p.jkt, tok.Type(), tok.RefreshToken != "")
	}
	// oauthtest bound the public client's refresh token: another key is
	// refused, while the token is still unused, and the login's key works.
	other := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "cli", Auth: NoClientAuth{}, Grant: RefreshToken{Token: tok.RefreshToken}, DPoPKey: newDPoPKey(t, "ES256")})
	var te *TokenError
	if _, err := other.Token(ctx); !errors.As(err, &te) || te.StatusCode != http.StatusBadRequest || te.ErrorCode != "invalid_grant" && te.ErrorCode != "invalid_dpop_proof" {
		t.Fatalf("a refresh token bound to another key: %v, want the server's invalid_grant or invalid_dpop_proof", err)
	}
	ts := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "cli", Auth: NoClientAuth{}, Grant: RefreshToken{Token: tok.RefreshToken}, DPoPKey: key})
	readPatients(t, srv, ts)
	// Seeding the login's tokens into a source with another key is refused
	// before anything is sent or stored.
	seeded := newTS(t, Config{TokenURL: srv.TokenURL(), ClientID: "cli", Auth: NoClientAuth{}, Grant: RefreshToken{}, DPoPKey: newDPoPKey(t, "ES256")})
	before := srv.Stats().TokenRequests
	if err := seeded.Seed(ctx, tok); !errors.Is(err, ErrDPoPKeyMismatch) {
		t.Fatalf("Seed with another key: %v, want ErrDPoPKeyMismatch", err)
	}
	if srv.Stats().TokenRequests != before {
		t.Fatal("a token request was made for a mismatched seed")
	}
}

// TestDPoPKeyValidation: unusable keys are refused by NewTokenSource.
func TestDPoPKeyValidation(t *testing.T) {
	if _, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", DPoPKey: badSigner{}}); err == nil || !strings.HasPrefix(err.Error(), "oauthclient: ") {
		t.Fatalf("got %v", err)
	}
	for _, alg := range []string{"ES256", "ES384", "ES512", "EdDSA", "PS256"} {
		if _, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", DPoPKey: newDPoPKey(t, alg)}); err != nil {
			t.Errorf("%s: %v", alg, err)
		}
	}
}

type badSigner struct{}

func (badSigner) Public() crypto.PublicKey { return "not a key" }
func (badSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("no")
}

// TestDPoPProofPSSSaltLength: PS256 proofs use a salt as long as the hash
// (RFC 7518 §3.5), which strict verifiers require.
func TestDPoPProofPSSSaltLength(t *testing.T) {
	key := newDPoPKey(t, "PS256")
	p, err := newDPoPProver(key)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("https://fhir.example/Patient")
	proof, err := p.proof("GET", u, "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(proof, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPSS(key.Public().(*rsa.PublicKey), crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
		t.Fatalf("PS256 proof with a salt other than the hash length: %v", err)
	}
}
