package interop

import (
	"sync"
	"testing"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// publicJWKS is the JWK Set registered for a key-based client: exactly
// what jwtassert.JWKS publishes for the client's signer, so the provider
// must accept the SDK's own JWKS output.
func publicJWKS(keyPEM []byte, keyID, alg string) ([]byte, error) {
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

// signAssertion signs an RFC 7523 JWT with c's key.
func signAssertion(t testing.TB, c Client, claims jwtassert.Claims) string {
	t.Helper()
	a, err := signerFor(t, c).Sign(claims)
	if err != nil {
		t.Fatalf("interop: sign assertion for %s: %v", c.ID, err)
	}
	return a
}

// testKeys are the client keys, generated once per test binary run: RSA
// key generation is slow under the race detector, and every server is a
// separate world anyway.
type testKeys struct {
	rs384, es384, jwtBearer []byte
}

var (
	keysOnce     sync.Once
	sharedKeySet testKeys
)

func sharedKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		sharedKeySet = testKeys{
			rs384:     generatePEM(t, "RS384"),
			es384:     generatePEM(t, "ES384"),
			jwtBearer: generatePEM(t, "RS384"),
		}
	})
	if sharedKeySet.rs384 == nil || sharedKeySet.es384 == nil || sharedKeySet.jwtBearer == nil {
		t.Fatal("interop: test key generation failed earlier")
	}
	return sharedKeySet
}

// generatePEM makes a fresh private key for alg, as PKCS #8 PEM.
func generatePEM(t testing.TB, alg string) []byte {
	t.Helper()
	key, err := jwtassert.GenerateKey(alg)
	if err != nil {
		t.Fatalf("interop: generate %s key: %v", alg, err)
	}
	b, err := jwtassert.EncodePEM(key)
	if err != nil {
		t.Fatalf("interop: encode %s key: %v", alg, err)
	}
	return b
}
