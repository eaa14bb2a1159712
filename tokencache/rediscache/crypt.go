package rediscache

import (
	"crypto/rand"
	"fmt"

	"github.com/oauthkit/oauthkit/tokencache"
)

// Encrypted entries are stored as
//
//	sealedVersion (1 byte) || nonce (12 bytes) || AES-GCM ciphertext and tag
//
// with the additional data aadPrefix + cache key, so that an entry copied
// to another key by someone with write access to Redis does not decrypt
// there. An encoded entry in the clear is JSON and starts with '{', never
// with sealedVersion.
const (
	sealedVersion byte = 1
	nonceSize          = 12
	tagSize            = 16
	aadPrefix          = "oauthkit rediscache entry v1\x00"
)

// isSealed reports whether b looks like an encrypted entry.
func isSealed(b []byte) bool {
	return len(b) > 0 && b[0] == sealedVersion
}

// seal encrypts the encoded entry plain for key with a fresh random nonce.
func (c *Cache) seal(plain []byte, key string) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+tagSize)
	out[0] = sealedVersion
	nonce := out[1 : 1+nonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("encrypt entry: %w", err)
	}
	return c.aead.Seal(out, nonce, plain, []byte(aadPrefix+key)), nil
}

// open decrypts an entry written by seal for key. Every failure (a value
// stored in the clear, a truncated value, a wrong key, a value moved from
// another key or tampered with) wraps tokencache.ErrCorrupt, so that callers
// treat it as a miss.
func (c *Cache) open(b []byte, key string) ([]byte, error) {
	if !isSealed(b) {
		return nil, fmt.Errorf("%w: entry is not encrypted but EncryptionKey is set", tokencache.ErrCorrupt)
	}
	if len(b) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("%w: encrypted entry is truncated", tokencache.ErrCorrupt)
	}
	nonce, sealed := b[1:1+nonceSize], b[1+nonceSize:]
	plain, err := c.aead.Open(nil, nonce, sealed, []byte(aadPrefix+key))
	if err != nil {
		return nil, fmt.Errorf("%w: entry does not decrypt (wrong EncryptionKey, or altered)", tokencache.ErrCorrupt)
	}
	return plain, nil
}
