package oauthclient_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// retryAfterNow is the fixed clock of the Retry-After tests.
var retryAfterNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name   string
		values []string // Retry-After header values; nil: no header
		max    time.Duration
		want   time.Duration
	}{
		{"absent", nil, time.Minute, 0},
		{"empty", []string{""}, time.Minute, 0},
		{"seconds", []string{"7"}, time.Minute, 7 * time.Second},
		{"seconds with spaces", []string{" 7 "}, time.Minute, 7 * time.Second},
		{"zero seconds", []string{"0"}, time.Minute, 0},
		{"seconds capped", []string{"3600"}, time.Minute, time.Minute},
		{"huge seconds capped", []string{"99999999999999999999999"}, time.Minute, time.Minute},
		{"seconds without cap", []string{"3600"}, 0, time.Hour},
		{"negative cap means none", []string{"3600"}, -time.Second, time.Hour},
		{"IMF-fixdate", []string{"Sun, 01 Mar 2026 12:00:30 GMT"}, time.Minute, 30 * time.Second},
		{"RFC 850 date", []string{"Sunday, 01-Mar-26 12:00:30 GMT"}, time.Minute, 30 * time.Second},
		{"asctime date", []string{"Sun Mar  1 12:00:30 2026"}, time.Minute, 30 * time.Second},
		{"date capped", []string{"Mon, 02 Mar 2026 12:00:00 GMT"}, time.Minute, time.Minute},
		{"date in the past", []string{"Sun, 01 Mar 2026 11:00:00 GMT"}, time.Minute, 0},
		{"negative seconds", []string{"-5"}, time.Minute, 0},
		{"fraction", []string{"1.5"}, time.Minute, 0},
		{"garbage", []string{"soon"}, time.Minute, 0},
		{"first of two values", []string{"5", "50"}, time.Minute, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, v := range tt.values {
				h.Add("Retry-After", v)
			}
			if got := oauthclient.ParseRetryAfter(h, retryAfterNow, tt.max); got != tt.want {
				t.Errorf("ParseRetryAfter(%q, max %v) = %v, want %v", tt.values, tt.max, got, tt.want)
			}
		})
	}
}

// FuzzParseRetryAfter checks that whatever a server sends, the delay is
// between 0 and the cap.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Sun, 01 Mar 2026 12:00:30 GMT", "Sunday, 01-Mar-26 12:00:30 GMT", "Sun Mar  1 12:00:30 2026", "18446744073709551616", "-1", "1e3"} {
		f.Add(s, int64(time.Minute))
	}
	f.Fuzz(func(t *testing.T, v string, maxDelay int64) {
		h := http.Header{"Retry-After": {v}}
		got := oauthclient.ParseRetryAfter(h, retryAfterNow, time.Duration(maxDelay))
		if got < 0 || (maxDelay > 0 && got > time.Duration(maxDelay)) {
			t.Errorf("ParseRetryAfter(%q, max %v) = %v, outside [0, max]", v, time.Duration(maxDelay), got)
		}
	})
}

// A Bulk Data status poll waits as long as the server asks, at least a
// second and at most a minute, whichever form the header has.
func ExampleParseRetryAfter() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"5", "Sun, 01 Mar 2026 12:00:20 GMT", "86400", "", "Sun, 01 Mar 2026 11:59:00 GMT"} {
		h := http.Header{"Retry-After": {v}}
		wait := max(oauthclient.ParseRetryAfter(h, now, time.Minute), time.Second)
		fmt.Printf("%q: wait %v\n", v, wait)
	}
	// Output:
	// "5": wait 5s
	// "Sun, 01 Mar 2026 12:00:20 GMT": wait 20s
	// "86400": wait 1m0s
	// "": wait 1s
	// "Sun, 01 Mar 2026 11:59:00 GMT": wait 1s
}
