package jwtassert

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// JWKSContentType is the media type of a JWK Set (RFC 7517 §8.5.1).
const JWKSContentType = "application/jwk-set+json"

// JWKS returns the JSON JWK Set ({"keys":[…]}) of the signers' public keys,
// in order, each with "kid", "alg" and "use":"sig". This is the document a
// "JWK Set URL" (Epic, SMART Backend Services) serves. It never holds
// private members. Every signer needs a distinct, non-empty key ID.
func JWKS(signers ...*Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, newError(nil, "JWKS needs at least one signer")
	}
	if err := checkSigners("JWKS", signers); err != nil {
		return nil, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(signers))}
	for _, s := range signers {
		set.Keys = append(set.Keys, s.PublicJWK())
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, wrapError(nil, err, "encode JWK Set")
	}
	return b, nil
}

// checkSigners reports the first signer in all that cannot be published in
// one JWK Set: nil, without a key ID (ErrMissingKeyID), without a public
// key (ErrUnsupportedKey), or with the key ID of an earlier one. op names
// the caller in the message.
func checkSigners(op string, all []*Signer) error {
	seen := make(map[string]bool, len(all))
	for i, s := range all {
		if s == nil || s.pub == nil {
			return newError(nil, "%s: signer %d is nil", op, i)
		}
		if s.kid == "" {
			return newError(ErrMissingKeyID, "%s: signer %d has no key ID", op, i)
		}
		if seen[s.kid] {
			return newError(nil, "%s: duplicate key ID %q", op, s.kid)
		}
		seen[s.kid] = true
		if jwk := s.PublicJWK(); !jwk.IsPublic() {
			return newError(ErrUnsupportedKey, "%s: signer %d has no public key", op, i)
		}
	}
	return nil
}

// KeySet holds the current signing key and older keys that are still
// published, for key rotation: publish a new key, start signing with it,
// and retire the old one once no assertion signed by it can be in flight
// and the server has refreshed its copy of the JWK Set.
//
// A KeySet is safe for concurrent use by multiple goroutines. It serves its
// JWK Set over HTTP as an http.Handler.
//
// Use NewKeySet; the zero KeySet has no current signer, so Sign and JWKS
// fail until Rotate gives it one.
type KeySet struct {
	mu       sync.RWMutex // guards current and previous
	current  *Signer
	previous []*Signer // newest first
}

// NewKeySet returns a KeySet that signs with current and publishes current
// and previous. All signers need distinct, non-empty key IDs.
func NewKeySet(current *Signer, previous ...*Signer) (*KeySet, error) {
	if current == nil {
		return nil, newError(nil, "NewKeySet: current signer is nil")
	}
	if err := checkSigners("NewKeySet", append([]*Signer{current}, previous...)); err != nil {
		return nil, err
	}
	return &KeySet{current: current, previous: slices.Clone(previous)}, nil
}

// Current returns the signer used by Sign.
func (k *KeySet) Current() *Signer {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// Rotate makes next the current signer. The old current signer stays
// published as the newest previous key until Retire removes it. If next
// was published already (see Publish) it moves from the previous keys to
// current; any other key with next's key ID is dropped, as a JWK Set
// cannot hold two keys with the same ID. Rotating to the current
// signer changes nothing. next should have a key ID: without one, Sign
// and JWKS fail with ErrMissingKeyID. Rotate
// panics if next is nil, like a nil map write: it is a programming error.
func (k *KeySet) Rotate(next *Signer) {
	if next == nil {
		panic("jwtassert: KeySet.Rotate called with a nil Signer")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if next == k.current {
		return
	}
	prev := make([]*Signer, 0, len(k.previous)+1)
	if k.current != nil && k.current.kid != next.kid {
		prev = append(prev, k.current)
	}
	for _, p := range k.previous {
		if p.kid != next.kid {
			prev = append(prev, p)
		}
	}
	k.current = next
	k.previous = prev
}

// Publish adds s to the published keys without signing with it, so that
// servers can fetch it before a later Rotate(s). s needs a key ID that is
// not yet in the set.
func (k *KeySet) Publish(s *Signer) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.current == nil {
		return newError(nil, "KeySet.Publish: key set has no current signer; use NewKeySet")
	}
	// s first, so that a problem with s is reported as signer 0.
	if err := checkSigners("KeySet.Publish", append([]*Signer{s, k.current}, k.previous...)); err != nil {
		return err
	}
	k.previous = append([]*Signer{s}, k.previous...)
	return nil
}

// Retire stops publishing the previous key with the given key ID. The
// current key cannot be retired; Retire of its ID, or of an unknown ID,
// does nothing.
func (k *KeySet) Retire(kid string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.previous = slices.DeleteFunc(k.previous, func(s *Signer) bool { return s.kid == kid })
}

// KeyIDs returns the key IDs of the published keys, current first.
func (k *KeySet) KeyIDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	var ids []string
	if k.current != nil {
		ids = append(ids, k.current.kid)
	}
	for _, p := range k.previous {
		ids = append(ids, p.kid)
	}
	return ids
}

// Sign signs c with the current signer. See [Signer.Sign].
func (k *KeySet) Sign(c Claims) (string, error) {
	return k.Current().Sign(c)
}

// JWKS returns the JWK Set of the current and previous keys, current first.
func (k *KeySet) JWKS() ([]byte, error) {
	k.mu.RLock()
	all := append([]*Signer{k.current}, k.previous...)
	k.mu.RUnlock()
	return JWKS(all...)
}

// ServeHTTP serves the JWK Set (GET and HEAD only) as
// application/jwk-set+json, cacheable for five minutes.
func (k *KeySet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b, err := k.JWKS()
	if err != nil {
		http.Error(w, "JWK Set unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", JWKSContentType)
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// String describes the key set by algorithms and key IDs only.
func (k *KeySet) String() string {
	if k == nil {
		return "jwtassert.KeySet(nil)"
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	s := fmt.Sprintf("jwtassert.KeySet{current: %s, previous: [", k.current)
	for i, p := range k.previous {
		if i > 0 {
			s += ", "
		}
		s += p.String()
	}
	return s + "]}"
}

// GoString is like String: private keys are never printed.
func (k *KeySet) GoString() string { return k.String() }

// Format implements fmt.Formatter so that every verb prints only
// algorithms and key IDs.
func (k *KeySet) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String()) }

// LogValue implements slog.LogValuer: only the current key's alg and kid
// and the previous key IDs are logged.
func (k *KeySet) LogValue() slog.Value {
	if k == nil {
		return slog.StringValue("<nil>")
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	prev := make([]string, len(k.previous))
	for i, p := range k.previous {
		prev[i] = p.kid
	}
	return slog.GroupValue(
		slog.Attr{Key: "current", Value: k.current.LogValue()},
		slog.Any("previous", prev),
	)
}
