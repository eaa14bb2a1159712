package tokencache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFileLockInProcess(t *testing.T) {
	f := newTestFile(t)
	t.Run("exclusion", func(t *testing.T) { testLockExclusion(t, f, 8, 10) })
	t.Run("cancel", func(t *testing.T) { testLockCancel(t, f, f) })
}

// Two FileLockers on one directory share nothing in memory: only the file
// lock keeps their holders apart.
func TestFileLockBetweenLockers(t *testing.T) {
	dir := t.TempDir()
	a, err := NewFileLocker(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFileLocker(dir)
	if err != nil {
		t.Fatal(err)
	}
	testLockCancel(t, a, b)
	if _, err := os.Stat(filepath.Join(dir, "v1-held.lock")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	// The lock survives an atomic replacement of the entry.
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	unlock, err := a.Lock(ctx, "v1-k")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Store(ctx, "v1-k", &Entry{AccessToken: "at"}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := b.Lock(cctx, "v1-k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock of a held key: %v, want DeadlineExceeded", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

const helperEnv = "TOKENCACHE_TEST_HELPER"

// TestFileLockAcrossProcesses starts several copies of the test binary
// that each take the lock many times, and checks from their shared log that
// no two critical sections overlapped and no counter update was lost.
func TestFileLockAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const procs, iters = 4, 20
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "counter"), []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmds := make([]*exec.Cmd, procs)
	outs := make([]strings.Builder, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"=lock", "HELPER_DIR="+dir,
			"HELPER_ID="+strconv.Itoa(i), "HELPER_ITERS="+strconv.Itoa(iters))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", i, err, outs[i].String())
		}
	}

	b, err := os.ReadFile(filepath.Join(dir, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); got != strconv.Itoa(procs*iters) {
		t.Errorf("counter = %s, want %d (lost updates)", got, procs*iters)
	}
	log, err := os.Open(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	sc := bufio.NewScanner(log)
	n, holder := 0, ""
	for sc.Scan() {
		verb, who, _ := strings.Cut(sc.Text(), " ")
		switch {
		case verb == "enter" && holder == "":
			holder = who
		case verb == "leave" && holder == who:
			holder = ""
			n++
		default:
			t.Fatalf("overlapping critical sections: %q while %q holds the lock", sc.Text(), holder)
		}
	}
	if n != procs*iters {
		t.Errorf("%d critical sections logged, want %d", n, procs*iters)
	}
}

// TestHelperProcess is not a real test: TestFileLockAcrossProcesses runs
// it in child processes.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "lock" {
		return // not started as a helper process of TestFileLockAcrossProcesses
	}
	dir, id := os.Getenv("HELPER_DIR"), os.Getenv("HELPER_ID")
	iters, _ := strconv.Atoi(os.Getenv("HELPER_ITERS"))
	f, err := NewFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range iters {
		unlock, err := f.Lock(ctx, "v1-shared")
		if err != nil {
			t.Fatal(err)
		}
		who := fmt.Sprintf("%s/%d", id, i)
		appendLine(t, filepath.Join(dir, "log"), "enter "+who)
		counter := filepath.Join(dir, "counter")
		b, err := os.ReadFile(counter)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := strconv.Atoi(string(b))
		time.Sleep(time.Millisecond) // widen the window for a racing process
		if err := os.WriteFile(counter, []byte(strconv.Itoa(c+1)), 0o600); err != nil {
			t.Fatal(err)
		}
		appendLine(t, filepath.Join(dir, "log"), "leave "+who)
		if err := unlock(); err != nil {
			t.Fatal(err)
		}
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := fh.Close(); err != nil {
		t.Fatal(err)
	}
}

// The O_EXCL lock file used where flock(2) is missing works anywhere, so it
// is tested on every platform.
func TestExclLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.lock")
	unlock, ok, err := exclTryLock(path)
	if err != nil || !ok {
		t.Fatalf("first lock: ok=%v err=%v", ok, err)
	}
	if _, ok, err := exclTryLock(path); err != nil || ok {
		t.Fatalf("second lock: ok=%v err=%v, want held", ok, err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file not removed: %v", err)
	}

	// A lock file left by a dead holder is broken once it is old enough.
	if _, ok, _ := exclTryLock(path); !ok {
		t.Fatal("relock failed")
	}
	recent := time.Now().Add(-exclStaleAfter / 2)
	if err := os.Chtimes(path, recent, recent); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := exclTryLock(path); ok {
		t.Fatal("a recent lock was broken")
	}
	old := time.Now().Add(-2 * exclStaleAfter)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := exclTryLock(path); ok || err != nil {
		t.Fatalf("stale lock: ok=%v err=%v, want removal then retry", ok, err)
	}
	unlock, ok, err = exclTryLock(path)
	if !ok || err != nil {
		t.Fatalf("lock after stale removal: ok=%v err=%v", ok, err)
	}
	unlock()
}
