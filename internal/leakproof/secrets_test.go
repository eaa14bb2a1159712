package leakproof_test

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// minSecretLen is the shortest value the book accepts: shorter ones
// could match printed text by chance. Every secret made here is longer.
const minSecretLen = 16

// newSecret returns a fresh random secret of 24 random bytes (hex), with
// a prefix naming its kind so that a server can tell them apart. Secrets
// differ on every run, so no output can contain them by construction.
func newSecret(kind string) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return kind + hex.EncodeToString(b)
}

// secretBook records every secret of a flow (those the test made and those
// the hostile server saw, such as signed assertions) under a label that
// failure messages print instead of the value.
type secretBook struct {
	mu   sync.Mutex
	vals map[string]string // value → label
}

func newSecretBook() *secretBook { return &secretBook{vals: map[string]string{}} }

// add records v under label, with the encodings under which it may be
// quoted (query escaping, base64 of a Basic header).
func (b *secretBook) add(label, v string) {
	if len(v) < minSecretLen {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
		if _, ok := b.vals[form]; !ok {
			b.vals[form] = label
		}
	}
}

// addKey records the private scalar of an ECDSA key in its usual forms.
func (b *secretBook) addKey(label string, k *ecdsa.PrivateKey) {
	raw, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	b.add(label, hex.EncodeToString(raw))
	b.add(label, base64.RawURLEncoding.EncodeToString(raw))
	b.add(label, base64.StdEncoding.EncodeToString(raw))
	b.add(label, k.D.String())
}

// find returns the labels, sorted and without repeats, of the secrets in
// text, leaving out those whose label is in allowed.
func (b *secretBook) find(text string, allowed ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := map[string]bool{}
	for v, label := range b.vals {
		if strings.Contains(text, v) && !seen[label] && !slices.Contains(allowed, label) {
			seen[label] = true
		}
	}
	labels := make([]string, 0, len(seen))
	for l := range seen {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	return labels
}

// check fails t once for each secret found in text, naming what (the
// output) and the secret's label, never its value.
func (b *secretBook) check(t *testing.T, what, text string, allowed ...string) {
	t.Helper()
	if found := b.find(text, allowed...); len(found) > 0 {
		t.Errorf("%s shows: %s", what, strings.Join(found, ", "))
	}
}
