package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/keyring"
)

const testExample = `	# In a script: get a token only when the cached one will not do.
	oauthkit test -profile epic -scope system/Patient.rs || oauthkit token -profile epic > /dev/null`

const resetExample = `	# Forget the cached token of a profile (the next 'token' asks the server):
	oauthkit reset -profile epic`

const logoutExample = `	# Revoke the refresh token of 'oauthkit login' and delete it from the keychain:
	oauthkit logout -grant refresh_token -fhir-base https://fhir.example.org/api/FHIR/R4 \
		-client-id abc -scope "openid fhirUser offline_access patient/Patient.rs"`

// cachedSource is a token source and its cache, resolved from the
// connection flags without asking the token endpoint for anything.
type cachedSource struct {
	ts    *oauthclient.TokenSource
	cache tokencache.Cache
	desc  string
}

// openCached resolves s (discovery included) into a cachedSource; adjust,
// if set, may change the Config first.
func openCached(ctx context.Context, s *settings, e *env, adjust func(*oauthclient.Config) error) (*cachedSource, error) {
	log := s.logger(e)
	if err := s.endpoints(ctx, log); err != nil {
		return nil, err
	}
	cfg, desc, err := s.config(e, log)
	if err != nil {
		return nil, err
	}
	if adjust != nil {
		if err := adjust(&cfg); err != nil {
			return nil, err
		}
	}
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		return nil, err
	}
	return &cachedSource{ts: ts, cache: cfg.Cache, desc: desc}, nil
}

// load returns the cached entry, or nil when there is none.
func (c *cachedSource) load(ctx context.Context) (*tokencache.Entry, error) {
	en, err := c.cache.Load(ctx, c.ts.CacheKey())
	if errors.Is(err, tokencache.ErrNotFound) {
		return nil, nil
	}
	return en, err
}

// withCached parses the connection flags of a cache command and calls fn
// under one context bounded by -timeout.
func withCached(args []string, e *env, name, example string, extra func(*flag.FlagSet), fn func(ctx context.Context, s *settings) error) error {
	fs := newFlagSet(name, connSynopsis, example, e)
	cf := addConnFlags(fs, false)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	s, err := cf.settings(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	return explain(ctx, fn(ctx, s), s.timeout)
}

func runTest(args []string, e *env) error {
	var validFor time.Duration
	return withCached(args, e, "test", testExample, func(fs *flag.FlagSet) {
		fs.DurationVar(&validFor, "valid-for", 10*time.Second, "the cached token must stay valid for at least this `duration`")
	}, func(ctx context.Context, s *settings) error {
		c, err := openCached(ctx, s, e, nil)
		if err != nil {
			return err
		}
		en, err := c.load(ctx)
		switch {
		case err != nil:
			return err
		case en == nil || en.AccessToken == "":
			return fmt.Errorf("no access token cached in the %s for these settings", c.desc)
		case !en.Expiry.IsZero() && time.Until(en.Expiry) < validFor:
			return fmt.Errorf("the cached access token expires at %s (in less than %s)", en.Expiry.UTC().Format(time.RFC3339), validFor)
		}
		if missing := missingScopes(s.scopes, en.Scope); len(missing) > 0 {
			return fmt.Errorf("the cached access token lacks scope %s", strings.Join(missing, " "))
		}
		until := "no expiry given"
		if !en.Expiry.IsZero() {
			until = "until " + en.Expiry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(e.stderr, "oauthkit: the cached access token is valid (%s)\n", until)
		return nil
	})
}

// missingScopes returns the scopes of want that granted lacks. An empty
// granted scope means the server did not say: the token was issued for
// the scopes of its cache entry, which are the requested ones.
func missingScopes(want []string, granted string) []string {
	if granted == "" {
		return nil
	}
	have := map[string]bool{}
	for _, g := range strings.Fields(granted) {
		have[g] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

func runReset(args []string, e *env) error {
	return withCached(args, e, "reset", resetExample, nil, func(ctx context.Context, s *settings) error {
		c, err := openCached(ctx, s, e, nil)
		if err != nil {
			return err
		}
		// Deleting a missing entry is no error for every cache, so look
		// first, to say what happened. A corrupt entry is deleted too.
		en, lerr := c.load(ctx)
		if lerr == nil && en == nil {
			fmt.Fprintf(e.stderr, "oauthkit: nothing was cached in the %s for these settings\n", c.desc)
			return nil
		}
		if err := c.cache.Delete(ctx, c.ts.CacheKey()); err != nil && !errors.Is(err, tokencache.ErrNotFound) {
			return err
		}
		fmt.Fprintf(e.stderr, "oauthkit: deleted the cached token from the %s\n", c.desc)
		return nil
	})
}

func runLogout(args []string, e *env) error {
	var revocationURL string
	return withCached(args, e, "logout", logoutExample, func(fs *flag.FlagSet) {
		fs.StringVar(&revocationURL, "revocation-url", "", "RFC 7009 revocation endpoint `URL` (default: the revocation_endpoint of the -fhir-base SMART configuration)")
	}, func(ctx context.Context, s *settings) error {
		if revocationURL == "" && s.fhirBase != "" {
			sc, err := oauthclient.DiscoverSMART(ctx, s.fhirBase)
			if err != nil {
				return fmt.Errorf("-fhir-base %s: %w", redactURL(s.fhirBase), err)
			}
			revocationURL = sc.RevocationEndpoint
		}
		if revocationURL == "" {
			return usagef("no revocation endpoint: give -revocation-url (or a -fhir-base whose SMART configuration names one); 'oauthkit reset' only deletes the cached token")
		}
		c, err := openCached(ctx, s, e, func(cfg *oauthclient.Config) error {
			cfg.RevocationURL = revocationURL
			return nil
		})
		if err != nil {
			return err
		}
		en, err := c.load(ctx)
		if err != nil {
			return err
		}
		if en == nil {
			fmt.Fprintf(e.stderr, "oauthkit: nothing was cached in the %s for these settings; nothing to revoke\n", c.desc)
			return nil
		}
		what := "access token"
		if en.RefreshToken != "" {
			what = "refresh token"
		}
		if err := c.ts.Revoke(ctx); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "oauthkit: revoked the %s and deleted it from the %s\n", what, c.desc)
		return nil
	})
}

// openCache opens the cache named by spec: memory, file[:DIR] or
// keyring[:SERVICE]. It returns the cache and a description for messages.
func openCache(spec string) (tokencache.Cache, string, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case "memory":
		if arg != "" {
			return nil, "", usagef("-cache memory takes no argument")
		}
		return tokencache.NewMemory(), "memory", nil
	case "file":
		dir := arg
		if dir == "" {
			var err error
			if dir, err = tokencache.DefaultDir(); err != nil {
				return nil, "", err
			}
		}
		c, err := tokencache.NewFile(dir)
		if err != nil {
			return nil, "", err
		}
		return c, "file cache in " + dir, nil
	case "keyring":
		service := arg
		if service == "" {
			service = defaultKeyringService
		}
		return keyring.New(service), "OS keychain (service " + service + ")", nil
	}
	return nil, "", usagef("unknown -cache %q (want memory, file[:DIR] or keyring[:SERVICE])", spec)
}

// cacheKeyFor names the cache entry of a refresh-token login: the logged-in
// user is the one whose OS account owns the cache, so the entry is named by
// token URL, client ID and scopes, as a key derived by the library would be.
// Other grants carry their own identity ("": derived).
func cacheKeyFor(s *settings, grant oauthclient.Grant) string {
	if _, ok := grant.(oauthclient.RefreshToken); !ok {
		return ""
	}
	return tokencache.Key(tokencache.KeyParts{TokenURL: s.tokenURL, ClientID: s.clientID, Grant: "refresh_token", Scopes: s.scopes})
}
