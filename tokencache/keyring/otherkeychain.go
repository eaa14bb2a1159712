//go:build !((dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd)

package keyring

// checkKeychain does nothing: outside the Secret Service systems, go-keyring
// talks to the keychain directly (macOS, Windows) or fails at once.
func checkKeychain() error { return nil }
