//go:build unix

package tokencache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/internal/testenv"
)

// otherUID owns the files another user planted; simulatedUID is the user a
// test acts as when it must not be root.
const (
	otherUID     = 12345
	simulatedUID = 54321
)

// plantedMarker is the access token of planted entries. Tests check that
// errors do not contain it and that Load does not return it.
const plantedMarker = "planted-token-marker"

// needRoot stops a test that must give files to another user.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.SkipOrFailInCI(t, "giving a file to another user needs root")
	}
}

// actAs makes File and FileLocker trust uid instead of the process's user
// for the rest of the test.
func actAs(t *testing.T, uid int) {
	t.Helper()
	old := currentUID
	currentUID = func() int { return uid }
	t.Cleanup(func() { currentUID = old })
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// plantEntry writes an entry holding plantedMarker at path.
func plantEntry(t *testing.T, path string) {
	t.Helper()
	b, err := Encode(&Entry{AccessToken: plantedMarker, RefreshToken: plantedMarker})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// wantUntrusted checks that err wraps ErrUntrusted, names path and, if
// owner is not negative, the owner's uid, and holds no planted token.
func wantUntrusted(t *testing.T, err error, path string, owner int) {
	t.Helper()
	if !errors.Is(err, ErrUntrusted) {
		t.Fatalf("error %v, want one wrapping ErrUntrusted", err)
	}
	if errors.Is(err, ErrNotFound) {
		t.Error("error wraps ErrNotFound too")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "tokencache: ") {
		t.Errorf("error %q does not start with the package name", msg)
	}
	if !strings.Contains(msg, path) {
		t.Errorf("error %q does not name %s", msg, path)
	}
	if owner >= 0 && !strings.Contains(msg, "uid "+strconv.Itoa(owner)) {
		t.Errorf("error %q does not name owner uid %d", msg, owner)
	}
	if strings.Contains(msg, plantedMarker) {
		t.Error("error text contains the planted file's content")
	}
}

// wantNoPlantedEntry checks that a Load refused the entry: an error
// wrapping ErrUntrusted and no entry.
func wantNoPlantedEntry(t *testing.T, e *Entry, err error, path string, owner int) {
	t.Helper()
	if e != nil {
		t.Fatalf("Load returned an entry (planted token used: %v)", e.AccessToken == plantedMarker)
	}
	wantUntrusted(t, err, path, owner)
}

func TestFileRefusesForeignDirectory(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	chown(t, dir, otherUID)
	_, err := NewFile(dir)
	wantUntrusted(t, err, dir, otherUID)
	_, err = NewFileLocker(dir)
	wantUntrusted(t, err, dir, otherUID)
}

func TestFileRefusesForeignEntry(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	f := newTestFile(t)
	path := filepath.Join(f.Dir(), "v1-k.json")
	plantEntry(t, path)
	chown(t, path, otherUID)
	e, err := f.Load(ctx, "v1-k")
	wantNoPlantedEntry(t, e, err, path, otherUID)

	// Store replaces the planted file with one of the current user.
	if err := f.Store(ctx, "v1-k", &Entry{AccessToken: "at-own"}); err != nil {
		t.Fatal(err)
	}
	e, err = f.Load(ctx, "v1-k")
	if err != nil || e.AccessToken != "at-own" {
		t.Fatalf("Load after Store: ok=%v, err=%v", e != nil && e.AccessToken == "at-own", err)
	}
}

// The case of a non-root user: a directory others may read, an entry
// planted by another user (root put it there).
func TestFileRefusesEntryOfAnotherUserAsNonRoot(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "tokens")
	if err := mkdirMode(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	chown(t, dir, simulatedUID)
	actAs(t, simulatedUID)
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "v1-k.json")
	plantEntry(t, path)
	chown(t, path, otherUID)
	e, err := f.Load(ctx, "v1-k")
	wantNoPlantedEntry(t, e, err, path, otherUID)

	// The same file owned by the user it acts as is loaded: the refusal
	// is about the owner, not about acting as another user.
	chown(t, path, simulatedUID)
	e, err = f.Load(ctx, "v1-k")
	if err != nil || e.AccessToken != plantedMarker {
		t.Fatalf("Load of the user's own entry: ok=%v, err=%v", e != nil && e.AccessToken == plantedMarker, err)
	}
}

func TestFileRefusesWritableEntry(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	path := filepath.Join(f.Dir(), "v1-k.json")
	plantEntry(t, path)
	for _, mode := range []os.FileMode{0o620, 0o602, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		e, err := f.Load(ctx, "v1-k")
		wantNoPlantedEntry(t, e, err, path, -1)
	}
}

func TestFileLockRefusesForeignLockFile(t *testing.T) {
	needRoot(t)
	ctx := context.Background()
	f := newTestFile(t)
	path := filepath.Join(f.Dir(), "v1-k.lock")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	chown(t, path, otherUID)
	unlock, err := f.Lock(ctx, "v1-k")
	if err == nil {
		unlock()
	}
	wantUntrusted(t, err, path, otherUID)
}

func TestFileRefusesSymlinkedDirectory(t *testing.T) {
	tmp := t.TempDir()
	real := filepath.Join(tmp, "real")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{real, filepath.Join(tmp, "missing")} {
		link := filepath.Join(tmp, "link")
		os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		for _, dir := range []string{link, link + string(filepath.Separator)} {
			_, err := NewFile(dir)
			wantUntrusted(t, err, link, -1)
			_, err = NewFileLocker(dir)
			wantUntrusted(t, err, link, -1)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Error("NewFile created the target of a dangling symbolic link")
	}
}

func TestFileRefusesSymlinkedEntry(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	// The target is a good entry of the current user: only the link is
	// wrong.
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	plantEntry(t, target)
	path := filepath.Join(f.Dir(), "v1-k.json")
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	e, err := f.Load(ctx, "v1-k")
	wantNoPlantedEntry(t, e, err, path, -1)

	// Store replaces the link, not its target.
	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "v1-k", &Entry{AccessToken: "at-own"}); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(target); err != nil || string(after) != string(before) {
		t.Errorf("Store changed the target of the link (err=%v)", err)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("entry after Store is not a regular file (err=%v)", err)
	}
}

func TestFileLockRefusesSymlinkedLockFile(t *testing.T) {
	ctx := context.Background()
	f := newTestFile(t)
	other := t.TempDir()
	existing := filepath.Join(other, "existing.lock")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(other, "missing.lock")
	path := filepath.Join(f.Dir(), "v1-k.lock")
	for _, target := range []string{existing, missing} {
		os.Remove(path)
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		unlock, err := f.Lock(ctx, "v1-k")
		if err == nil {
			unlock()
		}
		wantUntrusted(t, err, path, -1)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Error("Lock created the target of a dangling symbolic link")
	}
}

func TestFileParentDirectoryChecks(t *testing.T) {
	tests := []struct {
		name     string
		mode     os.FileMode
		owner    int // -1: the process's user
		actAs    int // -1: the process's user
		root     bool
		accepted bool
	}{
		{"private parent", 0o700, -1, -1, false, true},
		{"parent others may read", 0o755, -1, -1, false, true},
		{"group-writable parent", 0o770, -1, -1, false, false},
		{"world-writable parent", 0o777, -1, -1, false, false},
		{"sticky group-writable parent of the user", 0o770 | os.ModeSticky, -1, -1, false, true},
		{"sticky world-writable parent owned by root", 0o777 | os.ModeSticky, 0, simulatedUID, true, true},
		{"sticky world-writable parent owned by another user", 0o777 | os.ModeSticky, otherUID, simulatedUID, true, false},
		{"world-writable parent owned by root, not sticky", 0o777, 0, simulatedUID, true, false},
		{"parent owned by another user", 0o755, otherUID, simulatedUID, true, false}, // blamed for its owner
		{"parent owned by root", 0o755, 0, simulatedUID, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root {
				needRoot(t)
			}
			parent := filepath.Join(t.TempDir(), "parent")
			if err := mkdirMode(parent, tt.mode); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(parent, "tokens")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.owner >= 0 {
				chown(t, parent, tt.owner)
			}
			if tt.actAs >= 0 {
				chown(t, dir, tt.actAs)
				actAs(t, tt.actAs)
			}
			_, err := NewFile(dir)
			if tt.accepted {
				if err != nil {
					t.Fatalf("NewFile: %v", err)
				}
				return
			}
			wantUntrusted(t, err, parent, -1)
			blame := ", which group or others may write to"
			if tt.mode.Perm()&0o022 == 0 {
				blame = ", which is owned by uid"
			}
			if !strings.Contains(err.Error(), "is in "+parent+blame) {
				t.Errorf("error %q does not blame the parent", err)
			}

			// A directory NewFile would create there is refused too, and
			// not left behind.
			fresh := filepath.Join(parent, "fresh")
			_, err = NewFile(fresh)
			wantUntrusted(t, err, parent, -1)
			if !strings.Contains(err.Error(), "is in "+parent+blame) {
				t.Errorf("error %q does not blame the parent", err)
			}
			if _, err := os.Lstat(fresh); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("refused directory left behind (Lstat: %v)", err)
			}
		})
	}
}

// A cache directory created in a directory like /tmp (sticky, owned by
// root, writable by all) is accepted.
func TestFileInStickyRootDirectory(t *testing.T) {
	needRoot(t)
	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := mkdirMode(tmp, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	f, err := NewFile(filepath.Join(tmp, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Store(ctx, "v1-k", &Entry{AccessToken: "at"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(ctx, "v1-k"); err != nil {
		t.Fatal(err)
	}
}
