//go:build (dragonfly && cgo) || (freebsd && cgo) || linux || netbsd || openbsd

package keyring

import "os"

// checkKeychain refuses to use the Secret Service without a session bus;
// see errNoSessionBus.
func checkKeychain() error {
	if !sessionBusKnown(os.Getenv, fileExists, os.Getuid()) {
		return errNoSessionBus
	}
	return nil
}
