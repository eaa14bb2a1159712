package oauthclient

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
	"golang.org/x/oauth2"
)

// cacheKey derives the cache key from everything that makes tokens differ.
func cacheKey(c *Config) string {
	p := tokencache.KeyParts{TokenURL: c.TokenURL, ClientID: c.ClientID, Grant: c.Grant.CacheID(), Scopes: c.Scopes}
	var rest []string
	for k, vs := range c.EndpointParams {
		switch k {
		case "audience":
			p.Audience = append(p.Audience, vs...)
		case "resource":
			p.Resource = append(p.Resource, vs...)
		default:
			for _, v := range vs {
				rest = append(rest, url.QueryEscape(k)+"="+url.QueryEscape(v))
			}
		}
	}
	sort.Strings(rest)
	p.Extra = strings.Join(rest, "&")
	return tokencache.Key(p)
}

// CacheKey returns the key under which this source stores its token.
func (s *TokenSource) CacheKey() string { return s.key }

// String describes the source without secrets.
func (s *TokenSource) String() string {
	return fmt.Sprintf("oauthclient.TokenSource{TokenURL:%q ClientID:%q Grant:%T}", redactURL(s.cfg.TokenURL), s.cfg.ClientID, s.cfg.Grant)
}

// GoString describes the source without secrets.
func (s *TokenSource) GoString() string { return s.String() }

// Format prints the redacted form for every fmt verb.
func (s *TokenSource) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue prints the redacted form in slog output.
func (s *TokenSource) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Client returns a copy of base (nil: a new client) whose Transport adds
// this source's token, over base.Transport (nil: http.DefaultTransport).
// With Config.Origins set, the token goes only to those origins.
func (s *TokenSource) Client(base *http.Client) *http.Client { return wrapClient(base, s, s.origins) }

// OAuth2 adapts the source to golang.org/x/oauth2's TokenSource interface
// (whose Token has no context: it uses context.Background()).
func (s *TokenSource) OAuth2() oauth2.TokenSource { return oauth2Source{s} }

type oauth2Source struct{ s *TokenSource }

func (o oauth2Source) Token() (*oauth2.Token, error) { return o.s.Token(context.Background()) }

func (o oauth2Source) String() string             { return o.s.String() }
func (o oauth2Source) GoString() string           { return o.s.String() }
func (o oauth2Source) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.s.String()) }
func (o oauth2Source) LogValue() slog.Value       { return slog.StringValue(o.s.String()) }

// jitter returns a uniformly random duration in [0, d).
func jitter(d time.Duration) time.Duration { return rand.N(d) }

// grantName is the grant's kind for observers: its cache identity up to
// the first separator ("client_credentials", "refresh_token", …).
func grantName(g Grant) string {
	id := g.CacheID()
	if i := strings.IndexByte(id, 0); i >= 0 {
		id = id[:i]
	}
	return id
}
