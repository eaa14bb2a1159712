package tokenendpoint

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// century is the longest Retry-After delay RetryAfter reports.
const century = 100 * 365 * 24 * time.Hour

func TestDoRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		status int
		value  string // "" sends no header
		want   time.Duration
	}{
		{"seconds", 503, "7", 7 * time.Second},
		{"two days of seconds, not capped here", 429, "172800", 48 * time.Hour},
		{"a year of seconds", 503, "31536000", 365 * 24 * time.Hour},
		{"huge second count", 503, "99999999999999999999999999", century},
		{"int64 overflow in nanoseconds", 503, "9223372036854775807", century},
		{"date", 503, now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in year 9999", 429, "Fri, 31 Dec 9999 23:59:59 GMT", century},
		{"date in the past", 503, "Thu, 01 Jan 1970 00:00:00 GMT", 0},
		{"RFC 850 date", 503, "Friday, 02-Jan-26 03:05:05 GMT", time.Minute},
		{"asctime date", 503, "Fri Jan  2 03:06:05 2026", 2 * time.Minute},
		{"garbage", 503, "soon", 0},
		{"absent", 503, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.value != "" {
					w.Header().Set("Retry-After", tt.value)
				}
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			_, err := Do(t.Context(), srv.Client(), &Request{URL: srv.URL}, func() time.Time { return now })
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.RetryAfter != tt.want {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"1", time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"86401", 24*time.Hour + time.Second, true},
		{"3153600000", century, true},
		{"3153600001", century, true},
		{"18446744073709551615", century, true},
		{"184467440737095516150", century, true},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", century, true},
		{"Mon, 01 Jan 0001 00:00:00 GMT", 0, true},
		{"Friday, 02-Jan-26 03:05:05 GMT", time.Minute, true},
		{"Fri Jan  2 03:04:35 2026", 30 * time.Second, true},
		{"", 0, false},
		{"-3", 0, false},
		{"+3", 0, false},
		{"1.5", 0, false},
		{"1e3", 0, false},
		{"soon", 0, false},
		{"12 s", 0, false},
		{"Fri, 31 Dec 9999 23:59:59 CET", 0, false},
		{"2026-01-02T03:04:05Z", 0, false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.in != "" {
			h.Set("Retry-After", tt.in)
		}
		got, ok := RetryAfter(h, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestRetryAfterAbsentHeader(t *testing.T) {
	if d, ok := RetryAfter(nil, time.Now()); d != 0 || ok {
		t.Errorf("RetryAfter(nil) = %v, %v; want 0, false", d, ok)
	}
}
