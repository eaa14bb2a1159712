package keyring

import (
	"errors"
	"fmt"
	"runtime"

	gokeyring "github.com/zalando/go-keyring"

	"github.com/oauthkit/oauthkit/tokencache"
)

// ErrUnavailable is matched (with errors.Is) by every *UnavailableError.
var ErrUnavailable = errors.New("tokencache/keyring: OS keychain unavailable")

// UnavailableError reports that the OS keychain cannot be used: no Secret
// Service on the D-Bus session bus, no session bus at all, a locked
// collection or keychain whose unlock prompt was dismissed, an unsupported
// platform. Its message says what to install or unlock. It never contains
// a secret.
type UnavailableError struct {
	// Op is the operation that failed: "load", "store" or "delete".
	Op string
	// Err is the keychain's own error.
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("tokencache/keyring: %s: %s: %v", e.Op, unavailableHint(runtime.GOOS), e.Err)
}

// Unwrap returns the keychain's own error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnavailable or tokencache.ErrUnavailable,
// which token sources treat as a cache that cannot answer right now.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrUnavailable || target == tokencache.ErrUnavailable
}

// unavailableHint says, per platform, what makes the keychain usable.
func unavailableHint(goos string) string {
	switch goos {
	case "darwin", "ios":
		return "the macOS keychain is not usable: unlock the login keychain " +
			"(security unlock-keychain) or run in a logged-in GUI session"
	case "windows":
		return "Windows Credential Manager is not usable for this user"
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		return "no usable Secret Service on the D-Bus session bus: install and start " +
			"gnome-keyring (or KeePassXC with Secret Service integration) and unlock its " +
			"default collection; without a desktop session, start one with dbus-run-session " +
			"and gnome-keyring-daemon --unlock"
	default:
		return "no OS keychain support on " + goos
	}
}

// wrapErr turns a keychain error into this package's errors: go-keyring's
// ErrNotFound becomes tokencache.ErrNotFound, ErrSetDataTooBig stays a plain
// error (the value is too large: lower Options.MaxValueSize), and every
// other failure means the keychain cannot be used. go-keyring's errors come
// from D-Bus, the security tool or the Windows API and never contain the
// stored value.
func wrapErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gokeyring.ErrNotFound):
		return fmt.Errorf("tokencache/keyring: %s: %w", op, tokencache.ErrNotFound)
	case errors.Is(err, gokeyring.ErrSetDataTooBig):
		return fmt.Errorf("tokencache/keyring: %s: item too large for the keychain (lower Options.MaxValueSize): %w", op, err)
	default:
		return &UnavailableError{Op: op, Err: err}
	}
}
