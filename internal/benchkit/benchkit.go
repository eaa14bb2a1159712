// Package benchkit holds what the hot-path benchmarks of this module and
// of the separate module benchmarks/cloudauth share: the lower-bound
// "limit" transport, a no-op base, a check that a request carries a
// Bearer header, the request they send and the measuring loops.
package benchkit

import (
	"errors"
	"net/http"
	"testing"

	"github.com/oauthkit/oauthkit/internal/reqcopy"
)

// Limit is the lower bound for any token transport: it does only what a
// correct one must do per request (RoundTripper contract: never modify the
// caller's request): a shallow copy of the request with its own header
// map, an Authorization value computed once, and the base call. It looks
// up no token, so it never expires and never refreshes.
type Limit struct {
	header []string // "Bearer …", computed once, never modified
	base   http.RoundTripper
}

// NewLimit returns a Limit sending "Bearer token" over base.
func NewLimit(token string, base http.RoundTripper) *Limit {
	return &Limit{header: []string{"Bearer " + token}, base: base}
}

// RoundTrip implements http.RoundTripper.
func (t *Limit) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.base.RoundTrip(reqcopy.With(req, "Authorization", t.header))
}

// Nop answers every request with the same response without any I/O, so
// that the benchmarks measure only the token transports.
type Nop struct{ resp *http.Response }

// NewNop returns a Nop answering 200.
func NewNop() Nop {
	return Nop{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
}

// RoundTrip implements http.RoundTripper.
func (n Nop) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

// CheckBearer fails unless the request carries one Bearer header.
type CheckBearer struct{}

// RoundTrip implements http.RoundTripper.
func (CheckBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := r.Header.Values("Authorization"); len(v) != 1 || len(v[0]) < len("Bearer x") || v[0][:7] != "Bearer " {
		return nil, errors.New("no Bearer Authorization header")
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

// Request is the request the hot-path benchmarks send: a FHIR search with
// one header.
func Request(b testing.TB) *http.Request {
	req, err := http.NewRequest(http.MethodGet, "https://fhir.example.test/api/FHIR/R4/Patient?_id=42", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", "application/fhir+json")
	return req
}

// HotPath runs one sub-benchmark per name, sending Request through
// rts[name] b.N times, from one goroutine or, with parallel, from
// GOMAXPROCS goroutines sharing the transport.
func HotPath(b *testing.B, rts map[string]http.RoundTripper, names []string, parallel bool) {
	for _, name := range names {
		rt := rts[name]
		b.Run(name, func(b *testing.B) {
			req := Request(b)
			b.ReportAllocs()
			b.ResetTimer()
			if !parallel {
				for range b.N {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Fatal(err)
					}
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
