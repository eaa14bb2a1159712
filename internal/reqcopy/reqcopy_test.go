package reqcopy

import (
	"net/http"
	"strconv"
	"testing"
)

// TestWithCopies: for header maps of every size around the thresholds,
// the copy has every header plus the new one, and the caller's request and
// its map are left as they were.
func TestWithCopies(t *testing.T) {
	v := []string{"Bearer x"}
	for n := range 30 {
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/", nil)
		if n == 0 {
			req.Header = nil
		}
		for i := range n {
			req.Header.Set("X-H"+strconv.Itoa(i), strconv.Itoa(i))
		}
		r := With(req, "Authorization", v)
		if r == req || r.URL != req.URL {
			t.Fatalf("n=%d: not a shallow copy", n)
		}
		if len(r.Header) != n+1 || r.Header.Get("Authorization") != "Bearer x" {
			t.Fatalf("n=%d: copy has %d headers, Authorization %q", n, len(r.Header), r.Header.Get("Authorization"))
		}
		for i := range n {
			if got := r.Header.Get("X-H" + strconv.Itoa(i)); got != strconv.Itoa(i) {
				t.Fatalf("n=%d: X-H%d = %q", n, i, got)
			}
		}
		if len(req.Header) != n || req.Header.Get("Authorization") != "" {
			t.Fatalf("n=%d: the caller's header map changed", n)
		}
	}
}

// TestWithReplacesCallersValue: a caller's own Authorization value is
// replaced in the copy and kept in the original.
func TestWithReplacesCallersValue(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/", nil)
	req.Header.Set("Authorization", "Basic old")
	r := With(req, "Authorization", []string{"Bearer new"})
	if r.Header.Get("Authorization") != "Bearer new" || req.Header.Get("Authorization") != "Basic old" {
		t.Fatalf("copy %q, original %q", r.Header.Get("Authorization"), req.Header.Get("Authorization"))
	}
}

func BenchmarkWith(b *testing.B) {
	v := []string{"Bearer x"}
	for _, n := range []int{1, 6, 7, 8, 14} {
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.test/", nil)
		for i := range n {
			req.Header.Set("X-H"+strconv.Itoa(i), "v")
		}
		b.Run("headers="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				With(req, "Authorization", v)
			}
		})
	}
}
