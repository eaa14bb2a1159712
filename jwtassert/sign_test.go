package jwtassert

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

var allAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// keyFor returns the cached test key for alg.
func keyFor(alg string) string {
	switch alg[:2] {
	case "RS", "PS":
		return "RSA2048"
	case "Ed":
		return "Ed25519"
	}
	return map[string]string{"ES256": "P256", "ES384": "P384", "ES512": "P521"}[alg]
}

// verify parses token, checks its signature with key, and returns the
// header and the raw claims.
func verify(t *testing.T, token, alg string, key any) (jose.Header, map[string]any) {
	t.Helper()
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("ParseSigned: %v", err)
	}
	if len(tok.Headers) != 1 {
		t.Fatalf("got %d headers, want 1", len(tok.Headers))
	}
	var claims map[string]any
	if err := tok.Claims(key, &claims); err != nil {
		t.Fatalf("signature or claims do not verify: %v", err)
	}
	return tok.Headers[0], claims
}

func TestSignVerifies(t *testing.T) {
	now := time.Unix(1_750_000_000, 0)
	const (
		clientID = "client-123"
		tokenURL = "https://fhir.example.org/oauth2/token"
		jku      = "https://client.example.org/.well-known/jwks.json"
	)
	for _, alg := range allAlgorithms {
		t.Run(alg, func(t *testing.T) {
			for _, opaque := range []bool{false, true} {
				key := testKey(t, keyFor(alg))
				if opaque {
					key = opaqueSigner{key}
				}
				s, err := NewSigner(key, Options{KeyID: "kid-" + alg, Algorithm: alg, JKU: jku})
				if err != nil {
					t.Fatalf("NewSigner: %v", err)
				}
				token, err := s.Sign(Claims{
					Issuer:   clientID,
					Subject:  clientID,
					Audience: tokenURL,
					Lifetime: 3 * time.Minute,
					Now:      now,
					Extra:    map[string]any{"scope": "system/Patient.rs"},
				})
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}

				h, c := verify(t, token, alg, s.Public())
				if h.Algorithm != alg || h.KeyID != "kid-"+alg || h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["jku"] != jku {
					t.Errorf("header alg=%q kid=%q typ=%v jku=%v", h.Algorithm, h.KeyID, h.ExtraHeaders["typ"], h.ExtraHeaders["jku"])
				}
				if c["iss"] != clientID || c["sub"] != clientID || c["scope"] != "system/Patient.rs" {
					t.Errorf("claims iss=%v sub=%v scope=%v", c["iss"], c["sub"], c["scope"])
				}
				if aud, ok := c["aud"].(string); !ok || aud != tokenURL {
					t.Errorf("aud = %#v, want the single string %q", c["aud"], tokenURL)
				}
				if _, ok := c["nbf"]; ok {
					t.Error("assertion has an nbf claim")
				}
				iat, exp := c["iat"].(float64), c["exp"].(float64)
				if int64(iat) != now.Unix() || exp-iat != 180 {
					t.Errorf("iat=%v exp=%v, want iat=%d and exp-iat=180", iat, exp, now.Unix())
				}
				checkJTI(t, c["jti"])

				// The standard validation accepts it at issue time.
				var std jwt.Claims
				tok, _ := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err := tok.Claims(s.Public(), &std); err != nil {
					t.Fatal(err)
				}
				if err := std.Validate(jwt.Expected{Issuer: clientID, Subject: clientID, AnyAudience: jwt.Audience{tokenURL}, Time: now.Add(time.Minute)}); err != nil {
					t.Errorf("Validate: %v", err)
				}

				// A verifier holding the published JWK Set finds the key by kid.
				jwks, err := JWKS(s)
				if err != nil {
					t.Fatal(err)
				}
				var set jose.JSONWebKeySet
				if err := json.Unmarshal(jwks, &set); err != nil {
					t.Fatal(err)
				}
				found := set.Key(h.KeyID)
				if len(found) != 1 {
					t.Fatalf("JWKS has %d keys with kid %q", len(found), h.KeyID)
				}
				verify(t, token, alg, found[0])
			}
		})
	}
}

func checkJTI(t *testing.T, v any) string {
	t.Helper()
	jti, ok := v.(string)
	if !ok {
		t.Fatalf("jti = %T, want string", v)
	}
	raw, err := base64.RawURLEncoding.DecodeString(jti)
	if err != nil {
		t.Fatalf("jti is not base64url: %v", err)
	}
	if len(raw) < 16 {
		t.Fatalf("jti has %d random bytes, want at least 16", len(raw))
	}
	return jti
}

func TestSignDefaults(t *testing.T) {
	s, err := NewSigner(testKey(t, "P256"), Options{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Unix()
	token, err := s.Sign(Claims{Issuer: "c", Subject: "c", Audience: "https://as.example/token"})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Unix()
	h, c := verify(t, token, "ES256", s.Public())
	if _, ok := h.ExtraHeaders["jku"]; ok {
		t.Error("jku header set without Options.JKU")
	}
	iat, exp := int64(c["iat"].(float64)), int64(c["exp"].(float64))
	if iat < before || iat > after {
		t.Errorf("iat %d not within [%d, %d]", iat, before, after)
	}
	if time.Duration(exp-iat)*time.Second != DefaultLifetime {
		t.Errorf("exp-iat = %ds, want %s", exp-iat, DefaultLifetime)
	}
}

func TestSignLifetimeRounding(t *testing.T) {
	s, err := NewSigner(testKey(t, "Ed25519"), Options{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_750_000_000, 900_000_000) // .9 s
	token, err := s.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a", Now: now, Lifetime: 90*time.Second + 500*time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	_, c := verify(t, token, "EdDSA", s.Public())
	if iat, exp := c["iat"].(float64), c["exp"].(float64); iat != 1_750_000_000 || exp-iat != 90 {
		t.Errorf("iat=%v exp-iat=%v, want 1750000000 and 90", iat, exp-iat)
	}
}

func TestSignJTIUnique(t *testing.T) {
	s, err := NewSigner(testKey(t, "P256"), Options{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]bool, 1000)
	for i := 0; i < 1000; i++ {
		token, err := s.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a"})
		if err != nil {
			t.Fatal(err)
		}
		_, c := verify(t, token, "ES256", s.Public())
		jti := checkJTI(t, c["jti"])
		if seen[jti] {
			t.Fatalf("jti repeated after %d assertions", i)
		}
		seen[jti] = true
	}
}

func TestSignErrors(t *testing.T) {
	s, err := NewSigner(testKey(t, "P256"), Options{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	noKID, err := NewSigner(testKey(t, "P256"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok := Claims{Issuer: "c", Subject: "c", Audience: "a"}
	with := func(f func(*Claims)) Claims { c := ok; f(&c); return c }

	tests := []struct {
		name    string
		signer  *Signer
		claims  Claims
		want    error
		wantMsg string
	}{
		{"no key ID", noKID, ok, ErrMissingKeyID, "KeyID"},
		{"nil signer", nil, ok, ErrNoPrivateKey, "nil"},
		{"zero signer", &Signer{}, ok, ErrNoPrivateKey, "zero"},
		{"no issuer", s, with(func(c *Claims) { c.Issuer = "" }), nil, "Issuer"},
		{"no subject", s, with(func(c *Claims) { c.Subject = "" }), nil, "Subject"},
		{"no audience", s, with(func(c *Claims) { c.Audience = "" }), nil, "Audience"},
		{"negative lifetime", s, with(func(c *Claims) { c.Lifetime = -time.Second }), nil, "Lifetime"},
		{"sub-second lifetime", s, with(func(c *Claims) { c.Lifetime = time.Millisecond }), nil, "Lifetime"},
		{"unencodable extra", s, with(func(c *Claims) { c.Extra = map[string]any{"f": func() {}} }), nil, "sign"},
	}
	for _, name := range reservedClaims {
		tests = append(tests, struct {
			name    string
			signer  *Signer
			claims  Claims
			want    error
			wantMsg string
		}{"extra " + name, s, with(func(c *Claims) { c.Extra = map[string]any{name: "x"} }), nil, `"` + name + `"`})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, err := tt.signer.Sign(tt.claims)
			if err == nil {
				t.Fatalf("Sign succeeded (%d bytes), want error", len(token))
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "jwtassert: ") || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q should start with the package name and mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestSignConcurrent(t *testing.T) {
	s, err := NewSigner(testKey(t, "Ed25519"), Options{KeyID: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		jtis = map[string]bool{}
	)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				token, err := s.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a"})
				if err != nil {
					t.Error(err)
					return
				}
				tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
				if err != nil {
					t.Error(err)
					return
				}
				var c jwt.Claims
				if err := tok.Claims(s.Public(), &c); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				jtis[c.ID] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(jtis) != 400 {
		t.Errorf("%d distinct jti values from 400 assertions", len(jtis))
	}
}
