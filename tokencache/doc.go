// Package tokencache stores OAuth 2.0 tokens between requests, between runs
// of a program and between the processes of one machine.
//
// A Cache maps opaque keys to Entry values; Key derives a key from what
// identifies a token (token URL, client ID, grant, scopes, …). A Locker lets
// the processes sharing a cache agree that only one of them asks the token
// endpoint for a new token at a time, which matters when servers rate-limit
// token requests or rotate refresh tokens (a rotated refresh token can be
// redeemed only once).
//
// # Choosing a cache
//
//   - Memory keeps entries in the process. Tokens die with it. Use it for
//     long-running services, or when nothing else fits.
//   - File keeps one file per key in a private directory (DefaultDir is
//     os.UserCacheDir()/oauthkit/tokens). Use it for programs started again
//     and again, such as scheduled jobs, which should reuse the token of the
//     last run. Its Lock is machine-wide: on Unix systems an flock(2) on
//     "<key>.lock" that the kernel releases when the holder exits; on other
//     systems a lock file created with O_EXCL, which waiters remove as stale
//     after two minutes, so a crashed holder delays others by at most that.
//   - Package tokencache/keyring keeps entries in the OS keychain (macOS
//     Keychain, Windows Credential Manager, Secret Service on Linux). Use it
//     for tools and native apps holding a person's refresh token. It lives
//     in its own package so that importing tokencache does not pull in D-Bus.
//
// Every Cache in this module is safe for concurrent use by multiple
// goroutines, and every Locker's unlock function may be called more than
// once.
//
// # Entry format
//
// Encode and Decode define the one format all persistent caches store: a
// JSON object, UTF-8, at most 1 MiB (MaxEncodedSize):
//
//	{
//	  "v": 1,                         // format version, required, exactly 1
//	  "access_token": "…",            // required (may be empty)
//	  "token_type": "Bearer",         // omitted when empty
//	  "refresh_token": "…",           // omitted when empty
//	  "expiry": "2025-01-02T03:04:05.123456789Z", // RFC 3339 in UTC; omitted: never expires
//	  "scope": "a b",                 // granted scope; omitted when empty
//	  "extra": {"id_token": "…"},     // other token-response members; omitted when empty
//	  "updated": "2025-01-02T02:04:05Z", // when the entry was written; omitted when zero
//	  "jkt": "…"                      // RFC 7638 thumbprint of the DPoP key the tokens are bound to; omitted when none
//	}
//
// Readers ignore members they do not know, so new optional members may be
// added within version 1; any change older readers must not ignore gets a
// new version, which older readers reject as corrupt (and so treat as a
// cache miss). Numbers in "extra" decode as json.Number, as the token
// endpoint's response does, so an entry keeps the types and exact values of
// its Extra through every cache (integers beyond 2^53 included).
//
// # Security considerations
//
// Entries hold access and refresh tokens. Entry's String, GoString, Format
// and LogValue redact them, and no error of this package contains a token or
// the content of a cache file; keys are SHA-256 hashes and safe to log.
// KeyParts.Extra must not be a secret: hash secrets before using them there.
//
// File writes entries with permissions 0600 in a directory it creates with
// 0700, and trusts only files its own user (the effective user of the
// process) owns. It refuses, with an error wrapping ErrUntrusted that names
// the path and its owner but never a file's content:
//
//   - a cache directory that is a symbolic link (the last element of its
//     path), and on Unix systems one owned by another user, one that group
//     or others may write to, or one in a parent directory that group or
//     others may write to, unless that parent is sticky and owned by root
//     (like /tmp) or by the user; it does not change the permissions of a
//     directory it did not create;
//   - an entry file that is a symbolic link or not a regular file, and on
//     Unix systems (where it is opened with O_NOFOLLOW and checked through
//     the open file) one owned by another user or writable by group or
//     others. Load returns the error, never the file's tokens; token
//     sources treat it as a miss and warn, and the next Store replaces the
//     file with one of the user;
//   - on Unix systems, a lock file that is a symbolic link, is not a
//     regular file or is owned by another user. Lock fails until someone
//     removes the file, since removing a lock file is never safe.
//
// Root is no exception: a process running as root refuses the files of
// other users too. Tokens on disk are not encrypted: anyone who can read
// the user's files can use them. Prefer tokencache/keyring for long-lived
// refresh tokens on personal machines.
//
// Lock files only coordinate well-behaved processes; they do not protect
// against a hostile process of the same user.
package tokencache
