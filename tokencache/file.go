package tokencache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrUntrusted is wrapped by the errors of File and FileLocker for a cache
// directory, entry file or lock file that someone other than the current
// user could have planted or could change: one owned by another user, a
// symbolic link where a directory or file is expected, an entry file or
// directory that group or others may write to, or a directory whose parent
// group or others may write to (unless it is a sticky directory owned by
// root, such as /tmp). The error names the path and its owner, never the
// file's content. See "Security considerations" in the package
// documentation.
var ErrUntrusted = errors.New("tokencache: untrusted cache path")

// File is a Cache and Locker that keeps one file per key in a directory:
// "<dir>/<key>.json" holds the entry in the format of Encode, and
// "<dir>/<key>.lock" is the lock file of Lock (see FileLocker). Keys must
// pass ValidateKey, so they can never name a path outside the directory.
//
// Store writes a temporary file in the same directory with permissions
// 0600, syncs it, renames it over the entry's file and syncs the directory:
// readers see the old entry or the new one, never a mix, and a failed Store
// (disk full, read-only directory) leaves the old entry intact and removes
// its temporary file. A process killed during a Store may leave its
// temporary file behind; NewFile removes those older than ten minutes.
// Load reports a missing file as ErrNotFound and a file
// it cannot decode as ErrCorrupt; callers treat both as a miss.
//
// A File is safe for concurrent use by multiple goroutines, and several
// processes may share one directory. Use Lock around read-check-fetch-store
// sequences that must not run twice at once.
type File struct {
	dir    string
	locker *FileLocker

	// writeTemp writes b to the temporary file; tests replace it to simulate
	// failing writes.
	writeTemp func(f *os.File, b []byte) error
}

// NewFile returns a File cache in dir, creating dir (and missing parents)
// with permissions 0700 if needed. It refuses, with an error wrapping
// ErrUntrusted, a dir that is a symbolic link and, on Unix systems, a dir
// owned by another user, one that group or others may write to (rather than
// silently changing its permissions; a directory others may only read is
// accepted, since entry files are 0600), and one whose parent group or
// others may write to, unless that parent is sticky and owned by root (like
// /tmp) or by the current user. The current user is the effective user of
// the process, so root does not trust the files of other users either. It
// removes the temporary files of every key that Stores of killed processes
// left behind more than ten minutes ago.
func NewFile(dir string) (*File, error) {
	l, err := NewFileLocker(dir)
	if err != nil {
		return nil, err
	}
	sweepTemps(dir)
	return &File{dir: dir, locker: l, writeTemp: writeAll}, nil
}

// DefaultDir returns the default directory of File caches:
// os.UserCacheDir()/oauthkit/tokens. It does not create it.
func DefaultDir() (string, error) {
	return userCacheSubdir("tokens")
}

// DefaultLockDir returns the default directory of lock files for caches
// that have no directory of their own, such as the keychain cache of
// package tokencache/keyring: os.UserCacheDir()/oauthkit/locks. It does not
// create it.
func DefaultLockDir() (string, error) {
	return userCacheSubdir("locks")
}

func userCacheSubdir(name string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("tokencache: default directory: %w", err)
	}
	return filepath.Join(base, "oauthkit", name), nil
}

// Dir returns the directory f keeps its files in.
func (f *File) Dir() string { return f.dir }

func (f *File) path(key string) string { return filepath.Join(f.dir, key+".json") }

// Load reads the entry stored under key. It refuses, with an error wrapping
// ErrUntrusted (and not ErrNotFound), an entry file that is a symbolic link
// or not a regular file and, on Unix systems, one owned by another user or
// writable by group or others; it never returns the tokens of such a file.
// Callers treat the error as a miss, like any other error but ErrNotFound,
// and the next Store replaces the file with one of the current user.
func (f *File) Load(ctx context.Context, key string) (*Entry, error) {
	if err := f.check(ctx, key); err != nil {
		return nil, fmt.Errorf("tokencache: load: %w", err)
	}
	fh, err := openEntry(f.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokencache: load %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("tokencache: load %s: %w", key, err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, MaxEncodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("tokencache: load %s: %w", key, err)
	}
	e, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("tokencache: load %s: %w", key, err)
	}
	return e, nil
}

// Store atomically replaces the entry stored under key.
func (f *File) Store(ctx context.Context, key string, e *Entry) error {
	if err := f.check(ctx, key); err != nil {
		return fmt.Errorf("tokencache: store: %w", err)
	}
	b, err := Encode(e)
	if err != nil {
		return err
	}
	// The leading dot keeps temporary names out of the key space.
	tmp, err := os.CreateTemp(f.dir, "."+key+".tmp-*")
	if err != nil {
		return fmt.Errorf("tokencache: store %s: %w", key, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp uses 0600; Chmod makes it explicit on every platform.
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("tokencache: store %s: %w", key, err)
	}
	if err := f.writeTemp(tmp, b); err != nil {
		return fmt.Errorf("tokencache: store %s: write: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("tokencache: store %s: sync: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokencache: store %s: close: %w", key, err)
	}
	if err := os.Rename(tmpName, f.path(key)); err != nil {
		return fmt.Errorf("tokencache: store %s: %w", key, err)
	}
	ok = true
	if err := syncDir(f.dir); err != nil {
		return fmt.Errorf("tokencache: store %s: sync directory: %w", key, err)
	}
	return nil
}

// staleTempAge is how old a temporary file must be before NewFile removes
// it: a process killed between creating and renaming one leaves it behind
// (it holds a copy of a token, 0600). A Store in progress is far younger.
const staleTempAge = 10 * time.Minute

// sweepTemps removes the stale temporary files of every key in dir.
// Errors are ignored: the files are private and the next NewFile tries
// again.
func sweepTemps(dir string) {
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		name := de.Name()
		if ok, _ := filepath.Match(".*.tmp-*", name); !ok || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTempAge {
			os.Remove(path)
		}
	}
}

// Delete removes the entry stored under key, if any. The lock file stays.
func (f *File) Delete(ctx context.Context, key string) error {
	if err := f.check(ctx, key); err != nil {
		return fmt.Errorf("tokencache: delete: %w", err)
	}
	if err := os.Remove(f.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tokencache: delete %s: %w", key, err)
	}
	return nil
}

// Lock takes the machine-wide lock for key; see FileLocker.Lock.
func (f *File) Lock(ctx context.Context, key string) (func() error, error) {
	return f.locker.Lock(ctx, key)
}

func (f *File) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return ValidateKey(key)
}

func writeAll(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}
