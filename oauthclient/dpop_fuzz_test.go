package oauthclient

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// FuzzDPoPChallenge feeds arbitrary WWW-Authenticate and DPoP-Nonce
// values to the parsers; they must not panic and must keep only valid,
// bounded nonces.
func FuzzDPoPChallenge(f *testing.F) {
	f.Add(`DPoP error="use_dpop_nonce", algs="ES256 PS256"`, "abc")
	f.Add(`Bearer realm="x", DPoP algs=`, "")
	f.Add(`DPoP algs="\"ES256"`, "a\"b")
	f.Add(`, , DPoP`, strings.Repeat("n", 2000))
	p, err := newDPoPProver(newDPoPKey(f, "ES256"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, challenge, nonce string) {
		h := http.Header{"Www-Authenticate": {challenge}, "Dpop-Nonce": {nonce}}
		_, algs := dpopChallenge(h)
		_ = p.checkAlgs(algs)
		if p.remember("s", h) {
			got := p.nonce("s")
			if !validNonce(got) || len(got) > maxNonceLen {
				t.Fatal("an invalid nonce was remembered")
			}
		}
	})
}

// FuzzDPoPProof signs proofs for arbitrary methods, URLs and nonces: the
// builder must not panic, and every proof it makes must verify with its
// htu free of query and fragment.
func FuzzDPoPProof(f *testing.F) {
	f.Add("GET", "https://fhir.example/Patient?x=1#f", "nonce", "tok")
	f.Add("POST", "http://127.0.0.1:8080", "", "")
	f.Add("", "https://user:pw@h/%zz?", "a b", "\x00")
	p, err := newDPoPProver(newDPoPKey(f, "ES256"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, rawURL, nonce, tok string) {
		u, err := url.Parse(rawURL)
		if err != nil {
			return
		}
		proof, err := p.proof(method, u, accessTokenHash(tok), nonce, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatalf("proof does not parse: %v", err)
		}
		payload, err := jws.Verify(jws.Signatures[0].Protected.JSONWebKey)
		if err != nil {
			t.Fatalf("proof does not verify: %v", err)
		}
		var c struct {
			HTU string `json:"htu"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(c.HTU, "?#") && (u.RawQuery != "" || u.Fragment != "") {
			if hu, err := url.Parse(c.HTU); err == nil && (hu.RawQuery != "" || hu.Fragment != "") {
				t.Fatal("htu keeps a query or fragment")
			}
		}
	})
}
