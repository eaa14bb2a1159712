package tokenendpoint

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxRetryAfter bounds what RetryAfter reports (100 years), so that adding
// it to a time cannot overflow.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// RetryAfter parses the Retry-After header of h (RFC 9110 §10.2.3): either
// delay-seconds or an HTTP-date in any of the three formats http.ParseTime
// accepts, the latter measured from now. ok is false when the header is
// absent or not one of these forms. The duration is never negative (a
// date in the past gives 0) and never more than 100 years; it is not
// capped otherwise: the caller caps it with its retry policy.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true // only digits: out of range, not garbage
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	// Sub saturates instead of overflowing for dates centuries away.
	return min(max(t.Sub(now), 0), maxRetryAfter), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
