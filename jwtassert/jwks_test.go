package jwtassert

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func newTestSigner(t *testing.T, key, kid string) *Signer {
	t.Helper()
	s, err := NewSigner(testKey(t, key), Options{KeyID: kid})
	if err != nil {
		t.Fatalf("NewSigner(%s): %v", key, err)
	}
	return s
}

var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

func TestJWKSPublicOnly(t *testing.T) {
	signers := []*Signer{
		newTestSigner(t, "RSA2048", "rsa"),
		newTestSigner(t, "P256", "p256"),
		newTestSigner(t, "P384", "p384"),
		newTestSigner(t, "P521", "p521"),
		newTestSigner(t, "Ed25519", "ed"),
	}
	b, err := JWKS(signers...)
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != len(signers) {
		t.Fatalf("JWKS has %d keys, want %d", len(doc.Keys), len(signers))
	}
	wantKty := []string{"RSA", "EC", "EC", "EC", "OKP"}
	for i, k := range doc.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				t.Errorf("key %d has private member %q", i, m)
			}
		}
		if k["kid"] != signers[i].KeyID() || k["alg"] != signers[i].Algorithm() || k["use"] != "sig" || k["kty"] != wantKty[i] {
			t.Errorf("key %d: kid=%v alg=%v use=%v kty=%v", i, k["kid"], k["alg"], k["use"], k["kty"])
		}
	}

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	for i, k := range set.Keys {
		if !k.IsPublic() || !samePublic(k.Key, signers[i].Public()) {
			t.Errorf("key %d does not round-trip to the signer's public key", i)
		}
	}
}

func TestJWKSErrors(t *testing.T) {
	a := newTestSigner(t, "P256", "a")
	a2 := newTestSigner(t, "P384", "a")
	noKID := newTestSigner(t, "Ed25519", "")
	tests := []struct {
		name    string
		signers []*Signer
		want    error
		wantMsg string
	}{
		{"none", nil, nil, "at least one"},
		{"nil", []*Signer{a, nil}, nil, "nil"},
		{"zero", []*Signer{{}}, nil, "nil"},
		{"duplicate kid", []*Signer{a, a2}, nil, "duplicate"},
		{"same signer twice", []*Signer{a, a}, nil, "duplicate"},
		{"no kid", []*Signer{noKID}, ErrMissingKeyID, "key ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := JWKS(tt.signers...)
			if err == nil {
				t.Fatal("JWKS succeeded, want error")
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

// kids returns the key IDs of a JWK Set document.
func kids(t *testing.T, b []byte, err error) []string {
	t.Helper()
	if err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	return ids
}

// signedKID signs with ks and returns the verified assertion's kid.
func signedKID(t *testing.T, ks *KeySet) string {
	t.Helper()
	token, err := ks.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a"})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	cur := ks.Current()
	h, _ := verify(t, token, cur.Algorithm(), cur.Public())
	return h.KeyID
}

func TestKeySetRotation(t *testing.T) {
	a := newTestSigner(t, "P256", "a")
	b := newTestSigner(t, "P384", "b")
	c := newTestSigner(t, "Ed25519", "c")

	ks, err := NewKeySet(a)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		do       func()
		wantKIDs []string
		wantCur  string
	}{
		{"initial", func() {}, []string{"a"}, "a"},
		{"publish b", func() {
			if err := ks.Publish(b); err != nil {
				t.Fatal(err)
			}
		}, []string{"a", "b"}, "a"},
		{"rotate to b", func() { ks.Rotate(b) }, []string{"b", "a"}, "b"},
		{"rotate to b again", func() { ks.Rotate(b) }, []string{"b", "a"}, "b"},
		{"retire current is a no-op", func() { ks.Retire("b") }, []string{"b", "a"}, "b"},
		{"retire unknown is a no-op", func() { ks.Retire("zzz") }, []string{"b", "a"}, "b"},
		{"rotate to unpublished c", func() { ks.Rotate(c) }, []string{"c", "b", "a"}, "c"},
		{"retire a", func() { ks.Retire("a") }, []string{"c", "b"}, "c"},
		{"retire b", func() { ks.Retire("b") }, []string{"c"}, "c"},
	}
	for _, st := range steps {
		st.do()
		b, err := ks.JWKS()
		got := kids(t, b, err)
		if !slices.Equal(got, st.wantKIDs) || !slices.Equal(ks.KeyIDs(), st.wantKIDs) {
			t.Errorf("%s: published %v (KeyIDs %v), want %v", st.name, got, ks.KeyIDs(), st.wantKIDs)
		}
		if ks.Current().KeyID() != st.wantCur {
			t.Errorf("%s: current %q, want %q", st.name, ks.Current().KeyID(), st.wantCur)
		}
		if kid := signedKID(t, ks); kid != st.wantCur {
			t.Errorf("%s: assertion kid %q, want %q", st.name, kid, st.wantCur)
		}
	}
}

func TestKeySetConstruction(t *testing.T) {
	a := newTestSigner(t, "P256", "a")
	b := newTestSigner(t, "P384", "b")
	a2 := newTestSigner(t, "Ed25519", "a")
	noKID := newTestSigner(t, "Ed25519", "")

	ks, err := NewKeySet(a, b)
	if err != nil {
		t.Fatal(err)
	}
	b1, err := ks.JWKS()
	if got := kids(t, b1, err); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("NewKeySet(a, b) publishes %v", got)
	}

	for name, args := range map[string][]*Signer{
		"nil current":   {nil},
		"nil previous":  {a, nil},
		"duplicate kid": {a, b, a2},
		"no kid":        {noKID},
	} {
		_, err := NewKeySet(args[0], args[1:]...)
		if err == nil {
			t.Errorf("NewKeySet(%s) succeeded, want error", name)
		} else if name == "no kid" && !errors.Is(err, ErrMissingKeyID) {
			t.Errorf("NewKeySet(%s): %v, want ErrMissingKeyID", name, err)
		}
	}

	for name, s := range map[string]*Signer{"nil": nil, "duplicate current": a2, "duplicate previous": b, "no kid": noKID} {
		err := ks.Publish(s)
		if err == nil {
			t.Errorf("Publish(%s) succeeded, want error", name)
		} else if name == "no kid" && !errors.Is(err, ErrMissingKeyID) {
			t.Errorf("Publish(%s): %v, want ErrMissingKeyID", name, err)
		}
	}

	// A different key with the current key's ID replaces it.
	ks.Rotate(a2)
	b2, err := ks.JWKS()
	if got := kids(t, b2, err); !slices.Equal(got, []string{"a", "b"}) || ks.Current() != a2 {
		t.Errorf("after Rotate(a2): published %v, current %v", got, ks.Current())
	}

	defer func() {
		if recover() == nil {
			t.Error("Rotate(nil) did not panic")
		}
	}()
	ks.Rotate(nil)
}

func TestKeySetServeHTTP(t *testing.T) {
	ks, err := NewKeySet(newTestSigner(t, "P256", "a"), newTestSigner(t, "RSA2048", "old"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := ks.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ks)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var got jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != JWKSContentType {
		t.Errorf("GET: status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if len(got.Keys) != 2 || got.Keys[0].KeyID != "a" || got.Keys[1].KeyID != "old" {
		t.Errorf("served %d keys, want the 2 keys (%d bytes) of JWKS()", len(got.Keys), len(want))
	}

	resp, err = http.Post(srv.URL, "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestKeySetConcurrent(t *testing.T) {
	signers := []*Signer{
		newTestSigner(t, "P256", "k0"),
		newTestSigner(t, "P384", "k1"),
		newTestSigner(t, "Ed25519", "k2"),
	}
	ks, err := NewKeySet(signers[0])
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				token, err := ks.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a"})
				if err != nil {
					t.Error(err)
					return
				}
				tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256, jose.ES384, jose.EdDSA})
				if err != nil {
					t.Error(err)
					return
				}
				kid := tok.Headers[0].KeyID
				idx := slices.IndexFunc(signers, func(s *Signer) bool { return s.KeyID() == kid })
				if idx < 0 || tok.Claims(signers[idx].Public(), &jwt.Claims{}) != nil {
					t.Errorf("assertion with kid %q does not verify", kid)
					return
				}
				if _, err := ks.JWKS(); err != nil {
					t.Error(err)
					return
				}
				_ = ks.String()
			}
		}()
	}
	for i := 0; i < 100; i++ {
		next := signers[(i+1)%len(signers)]
		ks.Rotate(next)
		ks.Retire(signers[(i+2)%len(signers)].KeyID())
	}
	wg.Wait()
}

func TestKeySetZero(t *testing.T) {
	var ks KeySet
	if _, err := ks.Sign(Claims{Issuer: "c", Subject: "c", Audience: "a"}); err == nil {
		t.Error("Sign on a zero KeySet succeeded")
	}
	if _, err := ks.JWKS(); err == nil {
		t.Error("JWKS on a zero KeySet succeeded")
	}
	if err := ks.Publish(newTestSigner(t, "P256", "p")); err == nil {
		t.Error("Publish on a zero KeySet succeeded")
	}
	if ids := ks.KeyIDs(); len(ids) != 0 {
		t.Errorf("KeyIDs() = %v, want none", ids)
	}
	_ = fmt.Sprintf("%v %+v", &ks, ks.LogValue())
	ks.Rotate(newTestSigner(t, "P256", "a"))
	if kid := signedKID(t, &ks); kid != "a" {
		t.Errorf("after Rotate: kid %q, want a", kid)
	}
}
