package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/examples/internal/demo"
	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
)

// fleet is what every worker is configured with, as every host of a real
// fleet would be: the same client registration, Redis and cache settings.
type fleet struct {
	demo.Connection // where the workers send requests, as whom
	signer          *jwtassert.Signer
	requests        int
	interval        time.Duration
	logger          *slog.Logger
	redisOptions    redis.Options
	cacheOptions    rediscache.Options

	tokens atomic.Int64 // tokens obtained by all workers (OnTokenChange calls)
}

// result is what one worker did.
type result struct {
	requests  int    // requests answered 200 OK
	fetched   int    // tokens its TokenSource fetched from the token endpoint
	fromCache int    // tokens it sent that another worker had fetched
	cacheKey  string // the TokenSource's cache key; "" if it never got that far
	err       error
}

// newRedisClient returns a new client with its own connection pool, as a
// separate process would have.
func (f *fleet) newRedisClient() *redis.Client {
	o := f.redisOptions
	return redis.NewClient(&o)
}

// ping checks that Redis answers.
func (f *fleet) ping(ctx context.Context) error {
	rdb := f.newRedisClient()
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	return rdb.Ping(ctx).Err()
}

// run starts n workers, waits for them all and returns their results.
func (f *fleet) run(ctx context.Context, n int) []result {
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the workers' starts over one interval, as
			// independent processes would be.
			delay := f.interval * time.Duration(i) / time.Duration(n)
			results[i] = f.work(ctx, i+1, delay)
		}()
	}
	wg.Wait()
	return results
}

// work is one worker, set up as a separate process would be: its own Redis
// client, HTTP connections, discovery and TokenSource.
func (f *fleet) work(ctx context.Context, id int, delay time.Duration) (res result) {
	rdb := f.newRedisClient()
	defer rdb.Close()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	tokens := newTokenSet()
	// Runs after the TokenSource is closed, so that a token fetched by a
	// refresh still in flight when the worker stopped is counted.
	defer func() { res.fetched, res.fromCache = tokens.counts() }()
	logger := f.logger.With("worker", id)
	cacheOpts := f.cacheOptions
	cacheOpts.Logger = logger
	cache, err := rediscache.New(rdb, &cacheOpts)
	if err != nil {
		res.err = err
		return res
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: transport}

	// DiscoverSMART takes its HTTP client from the context, like
	// golang.org/x/oauth2 does.
	smart, err := oauthclient.DiscoverSMART(context.WithValue(ctx, oauth2.HTTPClient, httpClient), f.FHIRBase)
	if err != nil {
		res.err = err
		return res
	}
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   smart.TokenEndpoint,
		ClientID:   f.ClientID,
		Auth:       oauthclient.PrivateKeyJWT{Signer: f.signer},
		Scopes:     strings.Fields(f.Scope),
		Cache:      cache,                // a tokencache.Locker too: one fetch for the fleet
		Origins:    []string{f.FHIRBase}, // the token goes to this FHIR server only
		HTTPClient: httpClient,
		Logger:     logger,
		// Called only for a token this worker fetched, never for one taken
		// from the cache. The token is a secret: note its hash, never print it.
		OnTokenChange: func(tok *oauth2.Token) {
			tokens.fetched(tok.AccessToken)
			f.tokens.Add(1)
		},
	})
	if err != nil {
		res.err = err
		return res
	}
	// When the worker is done it stops as a process would exit. Close
	// starts no new refresh and waits for one the last request may have
	// started, so that its token is in Redis and the fleet's lock free
	// before the Redis client closes.
	defer ts.Close()
	res.cacheKey = ts.CacheKey()
	// The recorder sits below the Transport that adds the Authorization
	// header, so it sees which token each request carried.
	client := ts.Client(&http.Client{Timeout: 30 * time.Second, Transport: &recorder{base: transport, tokens: tokens}})

	if err := demo.Sleep(ctx, delay); err != nil {
		res.err = err
		return res
	}
	for i := 1; i <= f.requests; i++ {
		if i > 1 {
			if err := demo.Sleep(ctx, f.interval); err != nil {
				res.err = err
				return res
			}
		}
		status, err := demo.Get(ctx, client, f.URL())
		if err != nil {
			res.err = fmt.Errorf("request %d: %w", i, err)
			return res
		}
		if status != http.StatusOK {
			res.err = fmt.Errorf("request %d: GET %s: %s", i, f.Path, demo.StatusText(status))
			return res
		}
		res.requests++
	}
	return res
}

// deleteEntry removes the demo's token from Redis.
func (f *fleet) deleteEntry(results []result) {
	var key string
	for _, r := range results {
		if r.cacheKey != "" {
			key = r.cacheKey
			break
		}
	}
	if key == "" {
		return
	}
	rdb := f.newRedisClient()
	defer rdb.Close()
	if cache, err := rediscache.New(rdb, &f.cacheOptions); err == nil {
		demo.DeleteEntry(cache, key)
	}
}

// tokenSet tells, by their SHA-256 hashes, the tokens a worker fetched
// itself from those it sent but did not fetch (taken from the fleet cache).
// Only hashes are kept; they identify a token without revealing it. A
// tokenSet is safe for concurrent use: OnTokenChange may run in a
// background refresh while a request is being sent.
type tokenSet struct {
	mu   sync.Mutex             // guards seen
	seen map[[32]byte]tokenKind // by SHA-256 hash of the access token
}

type tokenKind int

const (
	kindUnsent    tokenKind = iota // fetched by this worker, not sent yet
	kindFetched                    // fetched by this worker and sent
	kindFromCache                  // sent, fetched by another worker
)

func newTokenSet() *tokenSet { return &tokenSet{seen: map[[32]byte]tokenKind{}} }

// fetched records a token this worker obtained from the token endpoint.
func (s *tokenSet) fetched(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[sha256.Sum256([]byte(token))] = kindUnsent
}

// sent records the token a request carried.
func (s *tokenSet) sent(token string) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	switch kind, ok := s.seen[h]; {
	case !ok:
		s.seen[h] = kindFromCache
	case kind == kindUnsent:
		s.seen[h] = kindFetched
	}
}

// counts returns the number of tokens fetched (sent or not) and the number
// of tokens sent that this worker did not fetch.
func (s *tokenSet) counts() (fetchedTokens, cached int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, kind := range s.seen {
		if kind == kindFromCache {
			cached++
		} else {
			fetchedTokens++
		}
	}
	return fetchedTokens, cached
}

// recorder is an http.RoundTripper that notes the token each request
// carries in a tokenSet, then sends the request with base.
type recorder struct {
	base   http.RoundTripper
	tokens *tokenSet
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		r.tokens.sent(token)
	}
	return r.base.RoundTrip(req)
}
