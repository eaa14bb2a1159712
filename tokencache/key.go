package tokencache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// KeyParts are the inputs that identify one token: two token sources with
// equal KeyParts may share a cached token, sources that differ in any field
// never do.
type KeyParts struct {
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID is the client identifier. Required.
	ClientID string
	// Grant names the grant type, for example "client_credentials" or
	// "urn:ietf:params:oauth:grant-type:jwt-bearer".
	Grant string
	// Scopes are the requested scopes. Order and duplicates do not matter.
	Scopes []string
	// Audience are the requested audiences (RFC 8693). Order and duplicates
	// do not matter.
	Audience []string
	// Resource are the requested resource indicators (RFC 8707). Order and
	// duplicates do not matter.
	Resource []string
	// Subject is the subject the token is for (a user, a JWT bearer subject),
	// if any.
	Subject string
	// Extra distinguishes tokens that are otherwise requested alike, for
	// example a hash of the credentials or a user-chosen profile name. It
	// must not be a secret itself: hash secrets before putting them here.
	Extra string
}

// String describes p without the query of its token URL (API gateways
// put keys there). KeyParts has value receivers for its formatting methods
// so that a value redacts as well as a pointer.
func (p KeyParts) String() string {
	return fmt.Sprintf("tokencache.KeyParts{TokenURL:%q ClientID:%q Grant:%q Scopes:%q Audience:%q Resource:%q Subject:%q}",
		tokenendpoint.RedactURL(p.TokenURL), p.ClientID, p.Grant, p.Scopes, p.Audience, p.Resource, p.Subject)
}

// GoString describes p like String.
func (p KeyParts) GoString() string { return p.String() }

// Format prints String for every fmt verb.
func (p KeyParts) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// LogValue prints String in slog output.
func (p KeyParts) LogValue() slog.Value { return slog.StringValue(p.String()) }

// keyVersion prefixes every key; a change to the canonical encoding below
// must change it.
const keyVersion = "v1"

// Key returns the cache key for p: "v1-" followed by the hex SHA-256 of a
// canonical JSON encoding of p, with Scopes, Audience and Resource sorted and
// de-duplicated. The result is deterministic, 67 bytes long, safe as a file
// name and safe to log (it reveals nothing but equality).
func Key(p KeyParts) string {
	canon := struct {
		TokenURL string   `json:"token_url"`
		ClientID string   `json:"client_id"`
		Grant    string   `json:"grant"`
		Scopes   []string `json:"scopes"`
		Audience []string `json:"audience"`
		Resource []string `json:"resource"`
		Subject  string   `json:"subject"`
		Extra    string   `json:"extra"`
	}{
		TokenURL: p.TokenURL,
		ClientID: p.ClientID,
		Grant:    p.Grant,
		Scopes:   sortedSet(p.Scopes),
		Audience: sortedSet(p.Audience),
		Resource: sortedSet(p.Resource),
		Subject:  p.Subject,
		Extra:    p.Extra,
	}
	// Marshalling strings and string slices cannot fail. JSON quotes every
	// string, so distinct field values always give distinct encodings.
	b, err := json.Marshal(canon)
	if err != nil {
		panic("tokencache: marshal key parts: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return keyVersion + "-" + hex.EncodeToString(sum[:])
}

// sortedSet returns a sorted copy of s without duplicates, never nil.
func sortedSet(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// maxKeyLen bounds keys so that "<key>.json", "<key>.lock" and temporary
// names stay below common file-name limits (255 bytes).
const maxKeyLen = 200

var errInvalidKey = errors.New("tokencache: invalid key")

// ValidateKey reports whether key is usable by the persistent caches: 1 to
// 200 bytes of [A-Za-z0-9._-], not starting with a dot. Every key returned by
// Key is valid. The error does not repeat the key.
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", errInvalidKey)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("%w: longer than %d bytes", errInvalidKey, maxKeyLen)
	}
	if key[0] == '.' {
		return fmt.Errorf("%w: starts with a dot", errInvalidKey)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("%w: byte %d is not one of [A-Za-z0-9._-]", errInvalidKey, i)
		}
	}
	return nil
}
