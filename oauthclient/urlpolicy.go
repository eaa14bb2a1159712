package oauthclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/idna"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// This file holds the one URL policy that the Transport, Login, discovery
// and the token source share: which URLs may carry credentials, which
// requests share an origin, and how URLs are printed.

// checkURL accepts absolute https URLs, and http URLs to loopback hosts
// (or to any host when insecure is set). URLs with user information are
// refused: credentials travel in headers or forms, never in URLs.
func checkURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	if u.Host == "" {
		return errors.New("must be absolute")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if insecure || isLoopback(u.Hostname()) {
			return nil
		}
		return ErrInsecureURL
	}
	return fmt.Errorf("unsupported scheme %q", u.Scheme)
}

// fieldError names the configuration field a URL error is about.
func fieldError(field string, err error) error {
	if errors.Is(err, ErrInsecureURL) {
		return fmt.Errorf("%w (%s)", err, field)
	}
	return fmt.Errorf("oauthclient: %s: %w", field, err)
}

// isLoopback reports whether host is "localhost" or a loopback IP.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secureTarget reports whether a token may be sent to u: https, or any
// scheme to a loopback host.
func secureTarget(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "https") || isLoopback(u.Hostname())
}

// sameOrigin reports whether req is the first of its redirect chain or has
// the same origin as the first.
func sameOrigin(req *http.Request) bool {
	first := req
	for first.Response != nil && first.Response.Request != nil {
		first = first.Response.Request
	}
	if first == req {
		return true
	}
	a, okA := origin(first.URL)
	b, okB := origin(req.URL)
	return okA && okB && a == b
}

// origin returns u's scheme, host and port as net/http dials them: the
// host in its IDNA ASCII form (lookalike Unicode hosts such as "İ" become
// their own punycode names instead of folding into ASCII ones), lower
// case, with the scheme's default port made explicit. ok is false for a
// host that cannot be converted: such a host matches no origin.
func origin(u *url.URL) (o string, ok bool) {
	scheme := strings.ToLower(u.Scheme)
	host, ok := dialHost(u.Hostname())
	if !ok {
		return "", false
	}
	port := u.Port()
	if port == "" {
		switch scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port), true
}

// OriginList lists URLs whose origins may receive a token (Transport.Origins).
// It prints its URLs without their queries, so a Transport printed with %v
// shows no gateway key.
type OriginList []string

// String lists the URLs without their queries.
func (o OriginList) String() string {
	out := make([]string, len(o))
	for i, u := range o {
		out[i] = redactURL(u)
	}
	return fmt.Sprintf("%q", out)
}

// GoString is String.
func (o OriginList) GoString() string { return o.String() }

// Format prints String for every fmt verb.
func (o OriginList) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.String()) }

// LogValue prints String in slog output.
func (o OriginList) LogValue() slog.Value { return slog.StringValue(o.String()) }

// MarshalJSON encodes the URLs without their queries.
func (o OriginList) MarshalJSON() ([]byte, error) {
	out := make([]string, len(o))
	for i, u := range o {
		out[i] = redactURL(u)
	}
	return json.Marshal(out)
}

// parseOrigins returns the origins of the given URLs, as origin computes
// them.
// The result is never nil.
func parseOrigins(urls []string) ([]string, error) {
	out := make([]string, 0, len(urls))
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, fmt.Errorf("oauthclient: Config.Origins: %q is not an absolute http(s) URL", redactURL(raw))
		}
		o, ok := origin(u)
		if !ok {
			return nil, fmt.Errorf("oauthclient: Config.Origins: %q has a host that cannot be used", redactURL(raw))
		}
		out = append(out, o)
	}
	return out, nil
}

// allowedOrigin reports whether u's origin is one of origins (empty: any).
func allowedOrigin(u *url.URL, origins []string) bool {
	if len(origins) == 0 { // unbound
		return true
	}
	o, ok := origin(u)
	if !ok {
		return false
	}
	for _, a := range origins {
		if a == o {
			return true
		}
	}
	return false
}

// RedactURLError returns a copy of a *url.Error (what http.Client's
// methods return) whose URL has no query, fragment or user information:
// the full request URL is in its text, and FHIR queries (Bulk Data
// _typeFilter, patient=…) can hold personal data or gateway keys. Other
// errors are returned unchanged; errors.Is and errors.As still see the
// wrapped cause.
func RedactURLError(err error) error { return tokenendpoint.RedactURLError(err) }

// dialHost converts host to the ASCII form net/http connects to.
func dialHost(host string) (string, bool) {
	if net.ParseIP(host) != nil {
		return strings.ToLower(host), true
	}
	ascii, err := idna.Lookup.ToASCII(host)
	if err != nil || ascii == "" {
		return "", false
	}
	return strings.ToLower(ascii), true
}

// redactURL returns raw without its query, fragment and user information,
// which may carry gateway keys or other secrets; safe to log.
func redactURL(raw string) string { return tokenendpoint.RedactURL(raw) }
