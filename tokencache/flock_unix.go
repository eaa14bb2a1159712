//go:build unix

package tokencache

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// tryLockFile tries once to take an exclusive flock(2) on path, creating the
// file if needed (see openLockFile: a symbolic link or a file of another
// user is refused). It reports ok=false, with no error, if another open file
// description holds the lock.
func tryLockFile(path string) (unlock func() error, ok bool, err error) {
	f, err := openLockFile(path)
	if err != nil {
		return nil, false, err
	}
	fd := int(f.Fd())
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EINTR) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("flock %s: %w", path, err)
	}
	return func() error {
		err := syscall.Flock(fd, syscall.LOCK_UN)
		// Closing the file releases the lock even if LOCK_UN failed.
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, true, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
