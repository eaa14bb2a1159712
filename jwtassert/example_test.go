package jwtassert_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// Generate a P-384 key, build a signer and publish its JWK Set.
func ExampleNewSigner() {
	key, err := jwtassert.GenerateKey("ES384")
	if err != nil {
		log.Fatal(err)
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: "backend-2025-01"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alg:", signer.Algorithm())
	fmt.Println("signer:", signer) // never prints the key

	jwks, err := jwtassert.JWKS(signer)
	if err != nil {
		log.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		log.Fatal(err)
	}
	k := set.Keys[0]
	fmt.Println("kty:", k["kty"], "crv:", k["crv"], "alg:", k["alg"], "kid:", k["kid"], "use:", k["use"])
	_, hasD := k["d"]
	fmt.Println("private member d published:", hasD)
	// Output:
	// alg: ES384
	// signer: jwtassert.Signer{alg: ES384, kid: "backend-2025-01"}
	// kty: EC crv: P-384 alg: ES384 kid: backend-2025-01 use: sig
	// private member d published: false
}

// Sign a SMART Backend Services client assertion and check it the way the
// token endpoint does.
func ExampleSigner_Sign() {
	key, err := jwtassert.GenerateKey("RS384")
	if err != nil {
		log.Fatal(err)
	}
	pemKey, err := jwtassert.EncodePEM(key) // what LoadPEMFile reads
	if err != nil {
		log.Fatal(err)
	}
	signer, err := jwtassert.ParsePEM(pemKey, jwtassert.Options{KeyID: "k1"})
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	assertion, err := signer.Sign(jwtassert.Claims{
		Issuer:   "my-client-id",
		Subject:  "my-client-id",
		Audience: "https://fhir.example.org/oauth2/token",
		Now:      now,
	})
	if err != nil {
		log.Fatal(err)
	}

	// Server side: verify with the published public key.
	tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS384})
	if err != nil {
		log.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(signer.Public(), &claims); err != nil {
		log.Fatal(err)
	}
	err = claims.Validate(jwt.Expected{
		Issuer:      "my-client-id",
		AnyAudience: jwt.Audience{"https://fhir.example.org/oauth2/token"},
		Time:        now.Add(time.Minute),
	})
	fmt.Println("valid:", err == nil)
	fmt.Println("kid:", tok.Headers[0].KeyID, "typ:", tok.Headers[0].ExtraHeaders["typ"])
	fmt.Println("lifetime:", claims.Expiry.Time().Sub(claims.IssuedAt.Time()))
	fmt.Println("has jti:", claims.ID != "")
	// Output:
	// valid: true
	// kid: k1 typ: JWT
	// lifetime: 4m0s
	// has jti: true
}

// Rotate keys: publish the new key, switch to it, retire the old one.
func ExampleKeySet() {
	newSigner := func(alg, kid string) *jwtassert.Signer {
		key, err := jwtassert.GenerateKey(alg)
		if err != nil {
			log.Fatal(err)
		}
		s, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: kid})
		if err != nil {
			log.Fatal(err)
		}
		return s
	}
	ks, err := jwtassert.NewKeySet(newSigner("ES384", "2025-01"))
	if err != nil {
		log.Fatal(err)
	}

	next := newSigner("ES384", "2025-02")
	if err := ks.Publish(next); err != nil { // servers can fetch it now
		log.Fatal(err)
	}
	fmt.Println("published:", ks.KeyIDs(), "signing with:", ks.Current().KeyID())

	ks.Rotate(next) // later: sign with the new key
	fmt.Println("published:", ks.KeyIDs(), "signing with:", ks.Current().KeyID())

	ks.Retire("2025-01") // once old assertions and cached JWK Sets expired
	fmt.Println("published:", ks.KeyIDs(), "signing with:", ks.Current().KeyID())
	// Output:
	// published: [2025-01 2025-02] signing with: 2025-01
	// published: [2025-02 2025-01] signing with: 2025-02
	// published: [2025-02] signing with: 2025-02
}

// Serve the JWK Set of a KeySet at the app's "JWK Set URL": the handler
// publishes every key the set holds, current first, public members only.
func ExampleKeySet_ServeHTTP() {
	key, err := jwtassert.GenerateKey("ES384")
	if err != nil {
		log.Fatal(err)
	}
	pemKey, err := jwtassert.EncodePEMWithKeyID(key, "k1") // the kid travels with the key
	if err != nil {
		log.Fatal(err)
	}
	signer, err := jwtassert.ParsePEM(pemKey, jwtassert.Options{}) // kid k1 from the PEM header
	if err != nil {
		log.Fatal(err)
	}
	ks, err := jwtassert.NewKeySet(signer)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(ks) // in production: mux.Handle("/.well-known/jwks.json", ks)
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status, resp.Header.Get("Content-Type"))
	for _, k := range set.Keys {
		_, private := k["d"]
		fmt.Println("kid:", k["kid"], "alg:", k["alg"], "private:", private)
	}
	// Output:
	// 200 OK application/jwk-set+json
	// kid: k1 alg: ES384 private: false
}
