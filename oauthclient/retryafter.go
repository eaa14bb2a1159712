package oauthclient

import (
	"net/http"
	"time"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// ParseRetryAfter returns the delay that the Retry-After header of h asks
// for (RFC 9110 §10.2.3), for callers' own poll and retry loops, such as
// the status polling of a FHIR Bulk Data export. The header is either
// delay-seconds or an HTTP-date, which is measured from now (a date in the
// past gives 0). The result is 0 when the header is absent or malformed,
// and never more than maxDelay when maxDelay is positive, so that a server
// cannot park the caller for days; with maxDelay ≤ 0 it is at most 100
// years. A loop usually floors it as well, so that a missing header or a
// date rounded down to the second does not turn into a busy loop:
//
//	wait := max(oauthclient.ParseRetryAfter(resp.Header, time.Now(), time.Minute), time.Second)
//
// It is safe for concurrent use.
func ParseRetryAfter(h http.Header, now time.Time, maxDelay time.Duration) time.Duration {
	d, ok := tokenendpoint.RetryAfter(h, now)
	if !ok {
		return 0
	}
	if maxDelay > 0 && d > maxDelay {
		return maxDelay
	}
	return d
}
