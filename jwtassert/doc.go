// Package jwtassert signs JWT client assertions and publishes the matching
// public keys.
//
// A client assertion is a short-lived JWT that a client signs with its own
// private key to authenticate to a token endpoint (RFC 7523 §2.2, the
// "private_key_jwt" method), as SMART Backend Services and Epic require for
// server-to-server access. The same signed JWT serves as the grant of
// RFC 7523 §2.1. The server verifies it with the public key that the client
// registered, usually by fetching the client's JWK Set URL.
//
// Load a key, sign assertions, publish the JWK Set:
//
//	signer, err := jwtassert.LoadPEMFile("key.pem", jwtassert.Options{KeyID: "k1"})
//	...
//	assertion, err := signer.Sign(jwtassert.Claims{
//		Issuer:   clientID,
//		Subject:  clientID,
//		Audience: tokenURL,
//	})
//	...
//	jwks, err := jwtassert.JWKS(signer) // serve at the registered JWK Set URL
//
// Keys come from PEM ([ParsePEM], [LoadPEMFile]: PKCS #1, PKCS #8 or SEC 1),
// from a private JWK or JWK Set ([ParseJWK]), from any [crypto.Signer]
// such as a hardware or cloud KMS key ([NewSigner]), or are generated with
// [GenerateKey] and saved with [EncodePEM], or with [EncodePEMWithKeyID],
// which stores the key ID with the key as a "kid" PEM header that [ParsePEM]
// and [LoadPEMFile] read back when Options.KeyID is empty.
//
// All JWS and JWK work is done by github.com/go-jose/go-jose/v4.
//
// # Algorithms
//
// Supported: RS256, RS384, RS512, PS256, PS384, PS512 (RSA, at least 2048
// bits), ES256 (P-256), ES384 (P-384), ES512 (P-521) and EdDSA (Ed25519).
// With Options.Algorithm empty the algorithm follows from the key:
//
//	RSA     → RS384
//	P-256   → ES256
//	P-384   → ES384
//	P-521   → ES512
//	Ed25519 → EdDSA
//
// RS384 and ES384 are what SMART Backend Services requires servers to
// support; Epic accepts both. An explicit algorithm is checked against the
// key ([ErrAlgorithmMismatch]); HMAC algorithms, "none" and unknown names
// fail with [ErrUnsupportedAlgorithm], RSA keys under 2048 bits with
// [ErrWeakKey].
//
// Every assertion has the header "alg", "kid", "typ":"JWT" (and "jku" when
// Options.JKU is set) and the claims "iss", "sub", "aud" (one string), "iat",
// "exp" and "jti". "exp" is "iat" plus Claims.Lifetime, by default
// [DefaultLifetime] (4 minutes: Epic and SMART reject more than 5). "jti" is
// 192 fresh random bits on every call, so an assertion is never reused.
//
// # Key rotation
//
// A [KeySet] signs with one current key and keeps publishing older keys,
// so that a server holding a cached JWK Set can verify assertions during
// a rotation:
//
//  1. Publish the new key before signing with it: ks.Publish(next) (or
//     NewKeySet(old, next) at start-up). The old key still signs.
//  2. Once the server can have fetched the new JWK Set, ks.Rotate(next):
//     new assertions use the new key; the old key stays published.
//  3. Once assertions signed with the old key have expired and the server
//     has refreshed its copy of the JWK Set, ks.Retire(oldKID).
//
// Key IDs must be unique within a set. A KeySet serves its JWK Set as an
// [net/http.Handler].
//
// # Security considerations
//
// A [Signer] and a [KeySet] hold private keys. Their String, GoString,
// Format and LogValue methods print only algorithms and key IDs, so %v,
// %+v, %#v and log/slog never reveal key material. Error messages name files
// but never quote key bytes or file contents; messages from the standard
// JSON decoder, which can quote input, are replaced by byte offsets.
//
// [JWKS] and [Signer.PublicJWK] publish only public members (never "d",
// "p", "q", "dp", "dq" or "qi").
//
// A signed assertion is a bearer credential for its lifetime: do not log it.
// Keep lifetimes short (the default is 4 minutes) and keep the token
// endpoint URL in "aud" exact, so an assertion cannot be replayed elsewhere.
//
// Key files should be readable only by the service (mode 0600). Encrypted
// PEM is not decrypted ([ErrEncryptedKey]): keep the passphrase problem out
// of the process by storing the key in a secret store, an OS keychain or a
// KMS (see [NewSigner]). A PEM input with more than one private key is
// rejected rather than guessing which one is meant.
//
// Symmetric keys ("oct" JWKs, HS256) are rejected: private_key_jwt needs a
// key whose public half can be published.
package jwtassert
