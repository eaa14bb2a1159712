package testenv

import (
	"fmt"
	"testing"
)

// recorder is a testing.TB that records Fatalf and Skipf instead of
// stopping the goroutine.
type recorder struct {
	testing.TB
	fatal, skip []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = append(r.fatal, fmt.Sprintf(format, args...))
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skip = append(r.skip, fmt.Sprintf(format, args...))
}

func TestSkipOrFailInCI(t *testing.T) {
	tests := []struct {
		ci        string
		wantFatal bool
	}{
		{"true", true},
		{"", false},
		{"false", false},
		{"1", false},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			r := &recorder{TB: t}
			SkipOrFailInCI(r, "need %s", "redis-server")
			got := r.skip
			if tt.wantFatal {
				got = r.fatal
			}
			if len(r.fatal)+len(r.skip) != 1 || len(got) != 1 || got[0] != "need redis-server" {
				t.Errorf("Fatalf calls %q, Skipf calls %q; want one %s call with %q",
					r.fatal, r.skip, map[bool]string{true: "Fatalf", false: "Skipf"}[tt.wantFatal], "need redis-server")
			}
		})
	}
}
