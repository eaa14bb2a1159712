package oauthclient

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/cryptosigner"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// DPoP (RFC 9449) errors, checked with errors.Is.
var (
	// ErrDPoPNotConfigured: the token endpoint issued a DPoP-bound token
	// (token_type DPoP) but Config.DPoPKey is not set, so the token cannot
	// be used. It also matches ErrUnsupportedTokenType.
	ErrDPoPNotConfigured = fmt.Errorf("%w: DPoP (set Config.DPoPKey to use DPoP-bound tokens)", ErrUnsupportedTokenType)
	// ErrDPoPKeyMismatch: a cached token or refresh token is bound to a
	// DPoP key other than this source's (or this source has none). It is
	// never sent; log in again, or use the key it was bound to.
	ErrDPoPKeyMismatch = errors.New("oauthclient: cached token is bound to another DPoP key; it was not used")
)

// DPoPAlgError reports that a resource server accepts no DPoP proof
// signed with the algorithm of Config.DPoPKey (its WWW-Authenticate DPoP
// challenge lists algs that exclude it).
type DPoPAlgError struct {
	// Algorithm is the key's JWS algorithm.
	Algorithm string
	// Supported are the algorithms the server named.
	Supported []string
}

func (e *DPoPAlgError) Error() string {
	return fmt.Sprintf("oauthclient: the resource server accepts DPoP proofs signed with %q only, not with the key's %s", e.Supported, e.Algorithm)
}

const (
	dpopNonceHeader = "Dpop-Nonce" // carries a server-provided nonce (RFC 9449 §8)
	maxNonces       = 256          // bounds the nonces remembered, one per origin
	maxNonceLen     = 1024         // bounds a remembered nonce; longer ones are ignored
)

// dpopProver signs DPoP proofs with one key and remembers the servers'
// nonces. Safe for concurrent use.
//
// The protected header (alg, typ dpop+jwt, the public jwk) is the same in
// every proof: go-jose encodes it once, and each proof is only its claims
// signed by go-jose's signer, so that a proof costs little more than its
// signature (the Transport makes one per request).
type dpopProver struct {
	header string            // base64url protected header, as go-jose made it
	signer jose.OpaqueSigner // go-jose's signer for the key
	alg    string
	jkt    string // RFC 7638 thumbprint of the public key, base64url SHA-256
	now    func() time.Time

	mu     sync.Mutex        // guards nonces
	nonces map[string]string // nonce scope (see nonceScope) → last nonce
}

// dpopAlgorithm returns the JWS algorithm for a DPoP key: ES256, ES384 or
// ES512 by curve, EdDSA, or PS256 for RSA (RFC 9449 forbids none and
// symmetric algorithms; PS256 and ES256 are the ones servers support most).
func dpopAlgorithm(pub crypto.PublicKey) (jose.SignatureAlgorithm, error) {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
		return "", errors.New("oauthclient: Config.DPoPKey: unsupported ECDSA curve (use P-256, P-384 or P-521)")
	case ed25519.PublicKey:
		return jose.EdDSA, nil
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return "", errors.New("oauthclient: Config.DPoPKey: RSA key shorter than 2048 bits")
		}
		return jose.PS256, nil
	}
	return "", fmt.Errorf("oauthclient: Config.DPoPKey: unsupported key type %T (use ECDSA, Ed25519 or RSA)", pub)
}

// newDPoPProver prepares a prover for key; nil key: nil prover.
func newDPoPProver(key crypto.Signer) (*dpopProver, error) {
	if key == nil || isNilPointer(key) {
		return nil, nil
	}
	pub := key.Public()
	alg, err := dpopAlgorithm(pub)
	if err != nil {
		return nil, err
	}
	if _, ok := pub.(*rsa.PublicKey); ok {
		key = pssSigner{key}
	}
	signer := cryptosigner.Opaque(key)
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	js, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signer}, opts)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: Config.DPoPKey: %w", err)
	}
	// A first signature checks the key and gives the protected header.
	obj, err := js.Sign([]byte("{}"))
	if err != nil {
		return nil, fmt.Errorf("oauthclient: Config.DPoPKey: sign: %w", err)
	}
	compact, err := obj.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("oauthclient: Config.DPoPKey: %w", err)
	}
	header, _, _ := strings.Cut(compact, ".")
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: Config.DPoPKey: thumbprint: %w", err)
	}
	return &dpopProver{header: header, signer: signer, alg: string(alg), jkt: base64.RawURLEncoding.EncodeToString(tp), now: time.Now, nonces: map[string]string{}}, nil
}

// pssSigner makes RSASSA-PSS signatures with a salt as long as the hash,
// as RFC 7518 §3.5 requires (go-jose's opaque signer asks for the longest
// salt, which verifiers that follow the RFC refuse).
type pssSigner struct{ crypto.Signer }

func (s pssSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if o, ok := opts.(*rsa.PSSOptions); ok {
		c := *o
		c.SaltLength = rsa.PSSSaltLengthEqualsHash
		opts = &c
	}
	return s.Signer.Sign(r, digest, opts)
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	ATH   string `json:"ath,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// proof returns a signed proof for a request with method to target. ath is
// the access token hash ("" at the token endpoint); nonce is sent when not
// empty. The proof is a credential: never log it.
func (p *dpopProver) proof(method string, target *url.URL, ath, nonce string, now time.Time) (string, error) {
	var jti [16]byte
	rand.Read(jti[:])
	payload, err := json.Marshal(dpopClaims{
		JTI: base64.RawURLEncoding.EncodeToString(jti[:]), HTM: method, HTU: htu(target),
		IAT: now.Unix(), ATH: ath, Nonce: nonce,
	})
	if err != nil {
		return "", fmt.Errorf("oauthclient: DPoP proof: %w", err)
	}
	b64 := base64.RawURLEncoding
	buf := make([]byte, 0, len(p.header)+1+b64.EncodedLen(len(payload))+1+b64.EncodedLen(512))
	buf = append(append(buf, p.header...), '.')
	buf = b64.AppendEncode(buf, payload)
	sig, err := p.signer.SignPayload(buf, jose.SignatureAlgorithm(p.alg))
	if err != nil {
		return "", fmt.Errorf("oauthclient: sign DPoP proof: %w", err)
	}
	buf = b64.AppendEncode(append(buf, '.'), sig)
	return string(buf), nil
}

// htu is target without query, fragment and user information (RFC 9449 §4.2).
func htu(target *url.URL) string {
	u := url.URL{Scheme: strings.ToLower(target.Scheme), Host: strings.ToLower(target.Host), Path: target.Path, RawPath: target.RawPath}
	if u.Path == "" {
		u.Path = "/"
	}
	return u.String()
}

// accessTokenHash is the ath claim for tok: base64url SHA-256.
func accessTokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// nonceScope names whose nonce applies to target: its origin, with the
// token endpoint kept apart from resource servers at the same origin (an
// authorization server and a resource server issue their own nonces).
func nonceScope(target *url.URL, tokenEndpoint bool) string {
	s := strings.ToLower(target.Scheme) + "://" + strings.ToLower(target.Host)
	if tokenEndpoint {
		return "token " + s
	}
	return s
}

// nonce returns the last nonce remembered for scope ("" if none).
func (p *dpopProver) nonce(scope string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nonces[scope]
}

// remember records the DPoP-Nonce of a response, if any, and reports
// whether there was a usable one.
func (p *dpopProver) remember(scope string, h http.Header) bool {
	n := h.Get(dpopNonceHeader)
	if !validNonce(n) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.nonces[scope]; !ok && len(p.nonces) >= maxNonces {
		for k := range p.nonces { // drop an arbitrary one: the map stays bounded
			delete(p.nonces, k)
			break
		}
	}
	p.nonces[scope] = n
	return true
}

// validNonce checks a nonce's syntax: 1*NQCHAR (RFC 9449 §8.1), bounded.
func validNonce(n string) bool {
	if n == "" || len(n) > maxNonceLen {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// dpopChallenge inspects the WWW-Authenticate challenges of a 401: whether
// a DPoP challenge asks for a nonce (use_dpop_nonce), and the algorithms a
// DPoP challenge names (nil if none).
func dpopChallenge(h http.Header) (useNonce bool, algs []string) {
	for _, c := range ParseWWWAuthenticate(h.Values("Www-Authenticate")) {
		if !strings.EqualFold(c.Scheme, "DPoP") {
			continue
		}
		if c.Params["error"] == "use_dpop_nonce" {
			useNonce = true
		}
		if a := strings.Fields(c.Params["algs"]); len(a) > 0 && algs == nil {
			algs = a
		}
	}
	return useNonce, algs
}

// checkAlgs returns a *DPoPAlgError when algs is not empty and excludes
// the prover's algorithm.
func (p *dpopProver) checkAlgs(algs []string) error {
	if len(algs) == 0 {
		return nil
	}
	for _, a := range algs {
		if a == p.alg {
			return nil
		}
	}
	return &DPoPAlgError{Algorithm: p.alg, Supported: algs}
}

func isDPoPType(typ string) bool { return strings.EqualFold(typ, "DPoP") }

// prover returns the source's DPoP prover, nil without Config.DPoPKey.
func (f *fetcher) prover() *dpopProver { return f.dpop }

func (f *fetcher) thumbprint() string { // "" without DPoP
	if p := f.prover(); p != nil {
		return p.jkt
	}
	return ""
}

// boundHere reports whether e's access token may be used by this source:
// it is not DPoP-bound, or bound to this source's key.
func (f *fetcher) boundHere(e *tokencache.Entry) bool {
	return !isDPoPType(e.TokenType) || (e.Thumbprint != "" && e.Thumbprint == f.thumbprint())
}

// checkBinding refuses to send a refresh token that was obtained with
// another DPoP key (or with one, by a source that has none): a DPoP-bound
// refresh token is useless with another key, and sending it would hand
// it to the server with a proof of the wrong key.
func (f *fetcher) checkBinding(prev *tokencache.Entry, req *tokenendpoint.Request) error {
	rt := req.Form.Get("refresh_token")
	if prev == nil || rt == "" || prev.RefreshToken != rt || prev.Thumbprint == "" {
		return nil
	}
	if prev.Thumbprint != f.thumbprint() {
		return ErrDPoPKeyMismatch
	}
	return nil
}

// prover returns the DPoP prover of the Transport's source, if any.
func (t *Transport) prover() *dpopProver {
	if s, ok := t.Source.(*TokenSource); ok {
		return s.fetcher.prover()
	}
	return nil
}

// send sends r, a copy of orig carrying st's Authorization header. For a
// DPoP-bound token it adds a fresh proof, remembers the resource server's
// DPoP-Nonce, replays the request once with a new proof when a 401 asks
// for a nonce it did not send (if orig's body can be replayed), and turns
// a DPoP challenge whose algs exclude the key's algorithm into a
// *DPoPAlgError.
func (t *Transport) send(r *http.Request, st *tokenState, orig *http.Request) (*http.Response, error) {
	if st.ath == "" {
		return t.base().RoundTrip(r)
	}
	p := t.prover()
	if p == nil {
		closeBody(r)
		return nil, ErrDPoPNotConfigured
	}
	scope := nonceScope(r.URL, false)
	for try := 0; ; try++ {
		sent := p.nonce(scope)
		proof, err := p.proof(r.Method, r.URL, st.ath, sent, p.now())
		if err != nil {
			closeBody(r)
			return nil, err
		}
		r.Header["Dpop"] = []string{proof}
		resp, err := t.base().RoundTrip(r)
		if err != nil {
			return resp, err
		}
		fresh := p.remember(scope, resp.Header) && p.nonce(scope) != sent
		if resp.StatusCode != http.StatusUnauthorized {
			return resp, nil
		}
		useNonce, algs := dpopChallenge(resp.Header)
		if err := p.checkAlgs(algs); err != nil {
			drain(resp)
			return nil, err
		}
		if !useNonce || !fresh || try > 0 || !replayable(orig) {
			return resp, nil
		}
		next, ok := replay(orig, st.header())
		if !ok {
			return resp, nil
		}
		drain(resp)
		r = next
	}
}

// DPoPProof returns a DPoP proof for a request with method to target,
// bound to the source's current token (its ath claim) and carrying the
// last nonce target's origin sent: for HTTP stacks other than this
// package's Transport (curl, say), which add proofs themselves. Each call
// makes a new proof; send it once. Without Config.DPoPKey it fails with
// ErrDPoPNotConfigured. The proof is a credential: do not log it.
func (s *TokenSource) DPoPProof(ctx context.Context, method, target string) (string, error) {
	p := s.fetcher.prover()
	if p == nil {
		return "", ErrDPoPNotConfigured
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return "", errors.New("oauthclient: DPoPProof: target is not an absolute URL")
	}
	st, err := s.state(ctx)
	if err != nil {
		return "", err
	}
	ath := st.ath
	if ath == "" {
		ath = accessTokenHash(st.entry.AccessToken)
	}
	return p.proof(method, u, ath, p.nonce(nonceScope(u, false)), p.now())
}
