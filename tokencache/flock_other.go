//go:build !unix

package tokencache

// tryLockFile tries once to take the lock file at path. Outside Unix there
// is no flock(2); the lock is the existence of the file, created with
// O_CREATE|O_EXCL and removed on unlock, with stale-lock recovery (see
// exclTryLock).
func tryLockFile(path string) (unlock func() error, ok bool, err error) {
	return exclTryLock(path)
}

// syncDir does nothing: directories cannot be opened for syncing on all of
// these systems, and on Windows MoveFileEx is already durable enough.
func syncDir(dir string) error { return nil }
