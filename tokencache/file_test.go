package tokencache

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestFile(t *testing.T) *File {
	t.Helper()
	f, err := NewFile(filepath.Join(t.TempDir(), "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// dirNames lists dir, without lock files.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if !strings.HasSuffix(de.Name(), ".lock") {
			names = append(names, de.Name())
		}
	}
	return names
}

func TestFileLoadStoreDelete(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	key := Key(KeyParts{TokenURL: "https://example.org/token", ClientID: "c"})
	if _, err := f.Load(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load of a missing key: %v, want ErrNotFound", err)
	}
	for i, e := range sampleEntries() {
		if err := f.Store(ctx, key, e); err != nil {
			t.Fatalf("entry %d: Store: %v", i, err)
		}
		got, err := f.Load(ctx, key)
		if err != nil {
			t.Fatalf("entry %d: Load: %v", i, err)
		}
		if !entriesEqual(got, e) {
			t.Errorf("entry %d: Load = %v, want %v", i, got, e)
		}
	}
	if names := dirNames(t, f.Dir()); len(names) != 1 || names[0] != key+".json" {
		t.Errorf("directory holds %q, want only %s.json", names, key)
	}
	if err := f.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(ctx, key); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}
	if _, err := f.Load(ctx, key); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load after Delete: %v, want ErrNotFound", err)
	}
}

func TestFilePermissions(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not meaningful on Windows")
	}
	f := newTestFile(t)
	fi, err := os.Stat(f.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %v, want 0700", perm)
	}
	if err := f.Store(context.Background(), "v1-k", &Entry{AccessToken: "at"}); err != nil {
		t.Fatal(err)
	}
	fi, err = os.Stat(filepath.Join(f.Dir(), "v1-k.json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %v, want 0600", perm)
	}
}

func TestNewFileDirectoryChecks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("permission bits are not meaningful on Windows")
	}
	tmp := t.TempDir()
	tests := []struct {
		name  string
		setup func(dir string) error
		ok    bool
	}{
		{"private", func(dir string) error { return os.Mkdir(dir, 0o700) }, true},
		{"readable by others", func(dir string) error { return mkdirMode(dir, 0o755) }, true},
		{"writable by group", func(dir string) error { return mkdirMode(dir, 0o770) }, false},
		{"writable by all", func(dir string) error { return mkdirMode(dir, 0o777) }, false},
		{"a file", func(dir string) error { return os.WriteFile(dir, nil, 0o600) }, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(tmp, string(rune('a'+i)))
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			_, err := NewFile(dir)
			if (err == nil) != tt.ok {
				t.Errorf("NewFile: %v, want ok=%v", err, tt.ok)
			}
		})
	}
	if _, err := NewFile(""); err == nil {
		t.Error(`NewFile("") succeeded`)
	}
}

func mkdirMode(dir string, mode fs.FileMode) error {
	if err := os.Mkdir(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode) // not subject to the umask
}

func TestFileInvalidKeys(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	for _, key := range []string{"", ".x", "../x", "a/b", `a\b`, "a b", "a:b"} {
		if err := f.Store(ctx, key, &Entry{AccessToken: "at"}); err == nil {
			t.Errorf("Store(%q) succeeded", key)
		}
		if _, err := f.Load(ctx, key); err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("Load(%q) = %v, want an invalid-key error", key, err)
		}
		if err := f.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded", key)
		}
		if _, err := f.Lock(ctx, key); err == nil {
			t.Errorf("Lock(%q) succeeded", key)
		}
	}
	if names := dirNames(t, f.Dir()); len(names) != 0 {
		t.Errorf("directory holds %q", names)
	}
}

func TestFileCorrupt(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	tests := []struct {
		name    string
		content []byte
	}{
		{"empty", nil},
		{"foreign", []byte("secret-content-of-another-program")},
		{"truncated", []byte(`{"v":1,"access_token":"secret-content`)},
		{"future version", []byte(`{"v":9,"access_token":"secret-content"}`)},
		{"oversize", append([]byte(`{"v":1,"access_token":"`), bytes.Repeat([]byte("s"), MaxEncodedSize+10)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(f.Dir(), "v1-c.json"), tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := f.Load(ctx, "v1-c")
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load: %v, want ErrCorrupt", err)
			}
			if strings.Contains(err.Error(), "secret-content") {
				t.Error("error text contains the file content")
			}
			// A corrupt entry can be overwritten.
			if err := f.Store(ctx, "v1-c", &Entry{AccessToken: "at"}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.Load(ctx, "v1-c"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFileFailedStoreKeepsPreviousEntry(t *testing.T) {
	ctx := context.Background()
	prev := &Entry{AccessToken: "at-previous", RefreshToken: "rt-previous"}
	next := &Entry{AccessToken: "at-next"}

	tests := []struct {
		name  string
		setup func(t *testing.T, f *File)
	}{
		{"write fails (disk full)", func(t *testing.T, f *File) {
			f.writeTemp = func(fh *os.File, b []byte) error {
				fh.Write(b[:len(b)/2]) // a partial write, then the error
				return syscall.ENOSPC
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFile(t)
			if err := f.Store(ctx, "v1-k", prev); err != nil {
				t.Fatal(err)
			}
			tt.setup(t, f)
			err := f.Store(ctx, "v1-k", next)
			if err == nil {
				t.Fatal("Store succeeded")
			}
			if strings.Contains(err.Error(), "at-next") {
				t.Error("error text contains the token")
			}
			got, err := f.Load(ctx, "v1-k")
			if err != nil {
				t.Fatalf("Load after a failed Store: %v", err)
			}
			if !entriesEqual(got, prev) {
				t.Errorf("previous entry not intact: %v", got)
			}
			if names := dirNames(t, f.Dir()); len(names) != 1 {
				t.Errorf("directory holds %q, want only the entry (no temporary files)", names)
			}
		})
	}
}

func TestFileFailedRenameCleansUp(t *testing.T) {
	// The entry's path is taken by a non-empty directory, so the rename
	// fails even for root.
	ctx := context.Background()
	f := newTestFile(t)
	blocker := filepath.Join(f.Dir(), "v1-k.json")
	if err := os.MkdirAll(filepath.Join(blocker, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "v1-k", &Entry{AccessToken: "at"}); err == nil {
		t.Fatal("Store succeeded")
	}
	if names := dirNames(t, f.Dir()); len(names) != 1 || names[0] != "v1-k.json" {
		t.Errorf("directory holds %q, want no temporary files", names)
	}
}

func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/cache-home")
	t.Setenv("HOME", "/home-dir")
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(dir, filepath.Join("oauthkit", "tokens")) {
		t.Errorf("DefaultDir = %s", dir)
	}
}

func TestDefaultLockDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/cache-home")
	t.Setenv("HOME", "/home-dir")
	tokens, err1 := DefaultDir()
	locks, err2 := DefaultLockDir()
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if want := filepath.Join(filepath.Dir(tokens), "locks"); locks != want {
		t.Errorf("DefaultLockDir = %s, want %s", locks, want)
	}
}

func TestNewFileSweepsStaleTempFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".v1-k.tmp-123")
	young := filepath.Join(dir, ".v1-k.tmp-456")
	other := filepath.Join(dir, ".v1-other.tmp-789")
	entry := filepath.Join(dir, "v1-k.json")
	for _, name := range []string{stale, young, other, entry} {
		if err := os.WriteFile(name, []byte("left by a killed process"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	for _, name := range []string{stale, other, entry} {
		if err := os.Chtimes(name, old, old); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewFile(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file of a key not removed")
	}
	if _, err := os.Stat(young); err != nil {
		t.Error("a young temporary file (a Store in progress) was removed")
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Error("stale temporary file of another key not removed")
	}
	if _, err := os.Stat(entry); err != nil {
		t.Error("an old entry file was removed")
	}
}
