package tokencache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// exclStaleAfter is how old a lock file made by exclTryLock must be before
// waiters consider its holder dead and remove it. It is longer than any
// token request with retries should take.
const exclStaleAfter = 2 * time.Minute

// exclTryLock tries once to take a lock that is the existence of the file at
// path, created with O_CREATE|O_EXCL (atomic on local file systems) and
// removed by unlock. It is the lock of systems without flock(2).
//
// A holder that dies without unlocking leaves the file behind. A file older
// than exclStaleAfter is taken to be such a stale lock and is removed, so
// the next attempt can succeed. This recovery is heuristic: a holder that
// keeps the lock longer than exclStaleAfter loses it, and its unlock then
// removes the next holder's file.
func exclTryLock(path string) (unlock func() error, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		// The content only helps people looking at a stuck lock.
		_, werr := fmt.Fprintf(f, "pid %d\n", os.Getpid())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			os.Remove(path)
			return nil, false, fmt.Errorf("write lock file: %w", werr)
		}
		return func() error {
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return nil
		}, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, err
	}
	fi, err := os.Lstat(path) // a symbolic link's own age, not its target's
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, false, nil // just released; try again
		}
		return nil, false, err
	}
	if time.Since(fi.ModTime()) > exclStaleAfter {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("remove stale lock file: %w", err)
		}
	}
	return nil, false, nil
}
