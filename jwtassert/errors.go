package jwtassert

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap them, so callers can
// branch with [errors.Is].
var (
	// ErrUnsupportedKey reports a key this package cannot sign with: a
	// symmetric key, an unsupported curve or key type, an OpenSSH key, a key
	// marked for encryption, or an otherwise malformed key.
	ErrUnsupportedKey = errors.New("jwtassert: unsupported key")

	// ErrUnsupportedAlgorithm reports an algorithm outside RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA (for example
	// HS256 or none).
	ErrUnsupportedAlgorithm = errors.New("jwtassert: unsupported algorithm")

	// ErrAlgorithmMismatch reports an algorithm that does not fit the key,
	// such as ES256 with an RSA key or ES384 with a P-256 key.
	ErrAlgorithmMismatch = errors.New("jwtassert: algorithm does not match key")

	// ErrWeakKey reports an RSA key shorter than 2048 bits.
	ErrWeakKey = errors.New("jwtassert: weak key")

	// ErrNoPrivateKey reports input that holds no private key: no PEM block,
	// only certificates or public keys, or a public JWK.
	ErrNoPrivateKey = errors.New("jwtassert: no private key")

	// ErrEncryptedKey reports a password-protected private key ("ENCRYPTED
	// PRIVATE KEY" or a legacy "Proc-Type: 4,ENCRYPTED" block). Decrypt it
	// first, for example with "openssl pkcs8 -in enc.pem -out key.pem".
	ErrEncryptedKey = errors.New("jwtassert: encrypted private key")

	// ErrMissingKeyID reports a Sign call on a Signer without a key ID, or a
	// JWK Set that would publish a key without one. SMART Backend Services
	// and Epic select the verification key by "kid".
	ErrMissingKeyID = errors.New("jwtassert: missing key ID")
)

// keyError is the error type of this package. Its message is
// "jwtassert: [key file "path": ]msg[: cause]" and it unwraps to both the
// sentinel kind and the cause. msg and cause never hold key material.
type keyError struct {
	file  string // key file path, set by LoadPEMFile. Optional.
	kind  error  // one of the sentinels above, or nil
	msg   string
	cause error // optional
}

func (e *keyError) Error() string {
	s := "jwtassert: "
	if e.file != "" {
		s += fmt.Sprintf("key file %q: ", e.file)
	}
	s += e.msg
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *keyError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

// newError returns a *keyError of the given kind (nil for none).
func newError(kind error, format string, args ...any) *keyError {
	return &keyError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// wrapError returns a *keyError of the given kind wrapping cause. cause's
// message becomes part of the error text, so it must hold no key material.
func wrapError(kind, cause error, format string, args ...any) *keyError {
	return &keyError{kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}
