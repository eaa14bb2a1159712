//go:build unix

package tokencache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// currentUID returns the user whose files File and FileLocker trust; tests
// replace it to act as another user.
var currentUID = os.Geteuid

// checkDir checks that dir, which exists, is a directory only the current
// user can change: not a symbolic link; in a parent that group and others
// cannot write to, unless it is sticky and owned by root or the current user
// (like /tmp: there, only an entry's owner may rename or remove it), and
// that root or the current user owns; owned by the current user; not
// writable by group or others.
func checkDir(dir string) error {
	dir = filepath.Clean(dir)
	fi, err := lstatDir(dir)
	if err != nil {
		return err
	}
	parent := filepath.Dir(dir)
	pfi, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("tokencache: parent directory: %w", err)
	}
	if perm := pfi.Mode().Perm(); perm&0o022 != 0 {
		owner := ownerOf(pfi)
		sticky := pfi.Mode()&fs.ModeSticky != 0
		if !sticky || (owner != 0 && owner != currentUID()) {
			return fmt.Errorf("%w: directory %s is in %s, which group or others may write to (mode %v, owner uid %d) and which is not a sticky directory owned by root; they could replace the cache directory",
				ErrUntrusted, dir, parent, pfi.Mode()&(fs.ModePerm|fs.ModeSticky), owner)
		}
	}
	if owner := ownerOf(pfi); owner != 0 && owner != currentUID() {
		return fmt.Errorf("%w: directory %s is in %s, which is owned by uid %d, neither root nor this process's user; that user could replace the cache directory",
			ErrUntrusted, dir, parent, owner)
	}
	if err := checkOwner("directory", dir, fi); err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("%w: directory %s is writable by group or others (mode %v); use a private directory (chmod 700)", ErrUntrusted, dir, perm)
	}
	return nil
}

// checkOwner refuses a file or directory that is not the current user's.
func checkOwner(what, path string, fi fs.FileInfo) error {
	if owner, me := ownerOf(fi), currentUID(); owner != me {
		return fmt.Errorf("%w: %s %s is owned by uid %d, not by uid %d (this process's user)", ErrUntrusted, what, path, owner, me)
	}
	return nil
}

// ownerOf returns the uid owning the file fi describes, or -1.
func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// openEntry opens the entry file at path for reading. It does not follow a
// symbolic link, and refuses, with an error wrapping ErrUntrusted, a file
// that is not a regular file, is owned by another user or is writable by
// group or others. A missing file is reported as fs.ErrNotExist.
func openEntry(path string) (*os.File, error) {
	// O_NONBLOCK: opening a planted FIFO must not block; it is refused below.
	f, err := openNoFollow("entry file", path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkRegular("entry file", path, fi)
	}
	if err == nil {
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			err = fmt.Errorf("%w: entry file %s is writable by group or others (mode %v)", ErrUntrusted, path, perm)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openLockFile opens the lock file at path, creating it with permissions
// 0600 if it is missing. It does not follow a symbolic link, and refuses,
// with an error wrapping ErrUntrusted, a file that is not a regular file or
// is owned by another user.
func openLockFile(path string) (*os.File, error) {
	f, err := openNoFollow("lock file", path, os.O_RDWR|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkRegular("lock file", path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// openNoFollow opens path with O_NOFOLLOW, reporting a symbolic link as an
// error wrapping ErrUntrusted.
func openNoFollow(what, path string, flag int, perm fs.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
	if err != nil {
		// O_NOFOLLOW fails with ELOOP on a link (EMLINK on some BSDs).
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) {
			if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return nil, fmt.Errorf("%w: %s %s is a symbolic link", ErrUntrusted, what, path)
			}
		}
		return nil, err
	}
	return f, nil
}

// checkRegular refuses what is not a regular file of the current user.
func checkRegular(what, path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s %s is not a regular file (mode %v)", ErrUntrusted, what, path, fi.Mode().Type())
	}
	return checkOwner(what, path, fi)
}
