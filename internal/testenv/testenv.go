// Package testenv holds helpers for tests that need something from the
// machine they run on: a program, a server, an OS keychain.
//
// A test that cannot find what it needs skips on a developer's machine but
// fails in continuous integration (the environment variable CI is "true"),
// so that CI cannot pass by silently skipping it.
package testenv

import (
	"os"
	"testing"
)

// SkipOrFailInCI skips the test with the formatted message, or fails it
// with that message when the environment variable CI is "true". Like
// t.Skipf and t.Fatalf, it stops the test's goroutine, so call it from the
// goroutine running the test. The message must not hold secrets.
func SkipOrFailInCI(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
		return
	}
	t.Skipf(format, args...)
}
