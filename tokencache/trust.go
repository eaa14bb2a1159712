package tokencache

import (
	"fmt"
	"io/fs"
	"os"
)

// lstatDir returns the FileInfo of dir itself (a cleaned path, so that
// Lstat of "link/" does not follow the link), refusing a symbolic link
// (ErrUntrusted) and anything but a directory.
func lstatDir(dir string) (fs.FileInfo, error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("tokencache: %w", err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("%w: directory %s is a symbolic link; use the directory it points to", ErrUntrusted, dir)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("tokencache: %s is not a directory", dir)
	}
	return fi, nil
}
