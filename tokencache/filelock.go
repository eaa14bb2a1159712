package tokencache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// FileLocker is a Locker that serialises holders of a key across the
// processes of one machine with a lock file per key, "<dir>/<key>.lock".
//
// On Unix systems the lock is an advisory flock(2) on that file: the kernel
// releases it when its holder exits, however it exits, so a crashed process
// never leaves a stale lock. Lock files are never removed (removing one
// while another process waits on it would let two processes hold "the"
// lock); they are empty and harmless. Lock refuses, with an error wrapping
// ErrUntrusted, a lock file that is a symbolic link, is not a regular file
// or is owned by another user: such a file cannot be removed safely, so
// every Lock of its key fails until someone removes it. On other systems,
// see the package documentation ("Choosing a cache").
//
// Within one process, a FileLocker also keeps a per-key in-process mutex in
// front of the file lock, so goroutines sharing a FileLocker queue in memory
// rather than polling the file system. Two FileLockers for the same
// directory in one process still exclude each other through the file lock.
//
// Lock waits by polling the file lock with a back-off from 5ms to 100ms, and
// gives up as soon as its context is done. A FileLocker is safe for
// concurrent use by multiple goroutines.
type FileLocker struct {
	dir   string
	locks keyLocks
}

// Lock polling back-off bounds.
const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 100 * time.Millisecond
)

// NewFileLocker returns a FileLocker keeping its lock files in dir. It
// creates dir (and missing parents) with permissions 0700 if needed, and
// refuses a dir that NewFile refuses, with an error wrapping ErrUntrusted.
func NewFileLocker(dir string) (*FileLocker, error) {
	if err := ensurePrivateDir(dir); err != nil {
		return nil, err
	}
	return &FileLocker{dir: dir}, nil
}

// Lock takes the lock for key, waiting until it is free or ctx is done. The
// key must pass ValidateKey. The returned unlock function releases the lock;
// calling it again does nothing and returns nil.
func (l *FileLocker) Lock(ctx context.Context, key string) (func() error, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("tokencache: lock: %w", err)
	}
	release, err := l.locks.lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("tokencache: lock: %w", err)
	}
	path := filepath.Join(l.dir, key+".lock")
	delay := lockPollMin
	var unlockFile func() error
	for {
		var ok bool
		unlockFile, ok, err = tryLockFile(path)
		if err != nil {
			release()
			return nil, fmt.Errorf("tokencache: lock: %w", err)
		}
		if ok {
			break
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			release()
			return nil, fmt.Errorf("tokencache: lock: %w", ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, lockPollMax)
	}
	var (
		once      sync.Once
		unlockErr error
	)
	return func() error {
		first := false
		once.Do(func() {
			first = true
			if err := unlockFile(); err != nil {
				unlockErr = fmt.Errorf("tokencache: unlock: %w", err)
			}
			release()
		})
		if !first {
			return nil
		}
		return unlockErr
	}, nil
}

// ensurePrivateDir creates dir with permissions 0700 if it is missing and
// checks that only the current user can change it (see checkDir).
func ensurePrivateDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("tokencache: empty directory name")
	}
	// Lstat first: MkdirAll follows a symbolic link, and fails confusingly
	// on a dangling one.
	created := false
	if _, err := os.Lstat(filepath.Clean(dir)); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("tokencache: create directory: %w", err)
		}
		created = true
	}
	err := checkDir(dir)
	if err != nil && created {
		os.Remove(dir) // empty; leave nothing in a refused place
	}
	return err
}
