//go:build !unix

package tokencache

import (
	"fmt"
	"os"
	"path/filepath"
)

// checkDir checks that dir, which exists, is a directory and not a symbolic
// link. Outside Unix, permission bits and owners do not describe who may
// write to a directory (Windows uses ACLs; the user's cache directory is
// private by default), so they are not checked.
func checkDir(dir string) error {
	_, err := lstatDir(filepath.Clean(dir))
	return err
}

// openEntry opens the entry file at path for reading, refusing a symbolic
// link or anything but a regular file with an error wrapping ErrUntrusted.
// A missing file is reported as fs.ErrNotExist.
func openEntry(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: entry file %s is not a regular file (mode %v)", ErrUntrusted, path, fi.Mode().Type())
	}
	return os.Open(path)
}
