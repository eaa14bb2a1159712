package rediscache

import (
	"crypto/rand"
	"fmt"
	"strconv"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Encrypted entries are stored as
//
//	sealedVersion (1 byte) || nonce (12 bytes) || AES-GCM ciphertext and tag
//
// with the additional data aadPrefix + cache key + "\x00" + fence (decimal),
// so that an entry copied to another key, or given another fence in the
// clear fence field, by someone with write access to Redis does not decrypt.
// An encoded entry in the clear is JSON and starts with '{', never with a
// sealed version byte.
const (
	sealedVersion byte = 2
	// legacySealedVersion marked entries sealed for their key alone, without
	// a fence, by earlier versions of this package. They no longer open.
	legacySealedVersion byte = 1
	nonceSize                = 12
	tagSize                  = 16
	aadPrefix                = "oauthkit rediscache entry v2\x00"
)

// isSealed reports whether b looks like an encrypted entry, of this format
// or the legacy one.
func isSealed(b []byte) bool {
	return len(b) > 0 && (b[0] == sealedVersion || b[0] == legacySealedVersion)
}

// additionalData binds a sealed entry to its cache key and fence.
func additionalData(key string, fence int64) []byte {
	return strconv.AppendInt([]byte(aadPrefix+key+"\x00"), fence, 10)
}

// seal encrypts the encoded entry plain for key and fence with a fresh
// random nonce.
func (c *Cache) seal(plain []byte, key string, fence int64) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+tagSize)
	out[0] = sealedVersion
	nonce := out[1 : 1+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypt entry: %w", err)
	}
	return c.aead.Seal(out, nonce, plain, additionalData(key, fence)), nil
}

// open decrypts an entry written by seal for key and fence. Every failure
// (a value stored in the clear, a legacy or truncated value, a wrong key, a
// value moved from another key or fence, or tampered with) wraps
// tokencache.ErrCorrupt, so that callers treat it as a miss.
func (c *Cache) open(b []byte, key string, fence int64) ([]byte, error) {
	switch {
	case !isSealed(b):
		return nil, fmt.Errorf("%w: entry is not encrypted but EncryptionKey is set", tokencache.ErrCorrupt)
	case b[0] == legacySealedVersion:
		return nil, fmt.Errorf("%w: entry sealed without a fence by an earlier version", tokencache.ErrCorrupt)
	case len(b) < 1+nonceSize+tagSize:
		return nil, fmt.Errorf("%w: encrypted entry is truncated", tokencache.ErrCorrupt)
	}
	nonce, sealed := b[1:1+nonceSize], b[1+nonceSize:]
	plain, err := c.aead.Open(nil, nonce, sealed, additionalData(key, fence))
	if err != nil {
		return nil, fmt.Errorf("%w: entry does not decrypt (wrong EncryptionKey, or altered)", tokencache.ErrCorrupt)
	}
	return plain, nil
}
