// Package keyring is a tokencache.Cache backed by the OS keychain: the
// macOS Keychain, Windows Credential Manager, or a Secret Service (GNOME
// Keyring, KeePassXC) on Linux and BSD, through github.com/zalando/go-keyring.
//
//	cache := keyring.New("my-service")
//
// It suits tools and native apps that log a person in once and keep the
// refresh token between runs. Each entry is stored under the service name,
// with the cache key (see tokencache.Key) as the account name.
//
// # Item format
//
// The item named by the key, the head, holds the entry in the format of
// tokencache.Encode when that fits in Options.MaxValueSize bytes (default
// 2000, below every platform's limit). A larger entry, typically one with
// an ID token in Extra, is gzip-compressed, base64-encoded and split over
// items "<key>#a1", "<key>#a2", … (or "#b1", … : two slots alternate so that
// a failed Store leaves the previous entry whole), and the head holds
// "oauthkit-chunked:" and a JSON manifest with the slot, the number of
// chunks, their length and SHA-256. Load reassembles and verifies the
// chunks; Store and Delete remove chunks that are no longer used.
//
// # Errors
//
// Load returns errors wrapping tokencache.ErrNotFound for a missing entry
// and tokencache.ErrCorrupt for one it cannot read. A keychain that cannot
// be used (no Secret Service on the D-Bus session bus, no session bus, a
// locked keychain, an unsupported platform) gives an *UnavailableError,
// which matches ErrUnavailable and says what to install or unlock. Where
// the Secret Service is used, a Cache with no session bus to talk to (no
// DBUS_SESSION_BUS_ADDRESS, no /run/user/UID/bus) reports that at once,
// rather than letting the D-Bus library launch a session bus of its own
// that would outlive the process.
//
// # Concurrency
//
// A Cache is safe for concurrent use by multiple goroutines and runs one
// keychain operation at a time. Its Lock uses lock files in
// os.UserCacheDir()/oauthkit/locks (see tokencache.FileLocker), so the
// processes of one user serialise token requests. A Load that races a Store
// of another process retries once and then reports ErrCorrupt, which
// callers treat as a miss. Stores of one key from several processes must be
// serialised with Lock (the token source does): two chunked Stores at once
// may mix their chunks, which the checksum then reports as corrupt.
//
// # Testing
//
// The tests in keyring_real_test.go use the real keychain. Where none is
// usable they skip, or fail when the environment variable CI is "true". On
// a Linux machine without a desktop session, run them with
//
//	scripts/with-keyring.sh go test ./tokencache/keyring
//
// which starts a private D-Bus session with an unlocked GNOME Keyring.
//
// # Security considerations
//
// The keychain encrypts entries at rest and ties them to the user's login;
// that is what makes it the right place for long-lived refresh tokens. Any
// program running as the same user with an unlocked keychain can still read
// them (macOS may ask the user first). Errors never contain a token or an
// item's value; keys are hashes and safe to log. The lock files hold no
// secrets; like those of any tokencache.FileLocker, a lock directory or
// lock file that is a symbolic link or belongs to another user is refused
// with an error wrapping tokencache.ErrUntrusted. Entries are stored in the
// format of tokencache.Encode, so they come back as tokencache.Decode
// returns them (numbers in Extra as json.Number).
package keyring
