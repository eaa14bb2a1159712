package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
)

// fleet is what every worker is configured with, as every host of a real
// fleet would be: the same client registration, Redis and cache settings.
type fleet struct {
	fhirBase     string
	clientID     string
	signer       *jwtassert.Signer
	scope        string
	path         string
	requests     int
	interval     time.Duration
	logger       *slog.Logger
	redisOptions redis.Options
	cacheOptions rediscache.Options

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
	// When the worker is done it stops as a process would exit: a
	// background refresh started by its last request is cut off before it
	// reaches the token endpoint, says nothing, and releases the fleet's
	// lock if it took it before the Redis client is closed.
	var stopped atomic.Bool
	rdb := f.newRedisClient()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	cache := &workerCache{}
	tokens := newTokenSet()
	defer func() {
		stopped.Store(true)
		cache.stop()
		rdb.Close()
		transport.CloseIdleConnections()
		res.fetched, res.fromCache = tokens.counts()
	}()
	logger := slog.New(stoppableHandler{f.logger.Handler(), &stopped}).With("worker", id)
	cacheOpts := f.cacheOptions
	cacheOpts.Logger = logger
	var err error
	if cache.rc, err = rediscache.New(rdb, &cacheOpts); err != nil {
		res.err = err
		return res
	}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: transport}

	// DiscoverSMART takes its HTTP client from the context, like
	// golang.org/x/oauth2 does.
	smart, err := oauthclient.DiscoverSMART(context.WithValue(ctx, oauth2.HTTPClient, httpClient), f.fhirBase)
	if err != nil {
		res.err = err
		return res
	}
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:   smart.TokenEndpoint,
		ClientID:   f.clientID,
		Auth:       oauthclient.PrivateKeyJWT{Signer: f.signer},
		Scopes:     strings.Fields(f.scope),
		Cache:      cache, // a tokencache.Locker too: one fetch for the fleet
		HTTPClient: &http.Client{Timeout: 30 * time.Second, Transport: &stoppableTransport{transport, &stopped}},
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
	res.cacheKey = ts.CacheKey()
	// The recorder sits below the Transport that adds the Authorization
	// header, so it sees which token each request carried.
	client := ts.Client(&http.Client{Timeout: 30 * time.Second, Transport: &recorder{base: transport, tokens: tokens}})
	target := strings.TrimSuffix(f.fhirBase, "/") + "/" + strings.TrimPrefix(f.path, "/")

	if err := sleep(ctx, delay); err != nil {
		res.err = err
		return res
	}
	for i := 1; i <= f.requests; i++ {
		if i > 1 {
			if err := sleep(ctx, f.interval); err != nil {
				res.err = err
				return res
			}
		}
		status, err := get(ctx, client, target)
		if err != nil {
			res.err = fmt.Errorf("request %d: %w", i, err)
			return res
		}
		if status != http.StatusOK {
			res.err = fmt.Errorf("request %d: GET %s: %s", i, f.path, statusText(status))
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
	cache, err := rediscache.New(rdb, &f.cacheOptions)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	cache.Delete(ctx, key)
}

// errStopped fails the requests of a worker that has stopped.
var errStopped = errors.New("worker stopped")

// stoppableTransport is an http.RoundTripper that sends requests with base
// until stopped is set, then fails them with errStopped.
type stoppableTransport struct {
	base    http.RoundTripper
	stopped *atomic.Bool
}

func (t *stoppableTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.stopped.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errStopped
	}
	return t.base.RoundTrip(req)
}

// workerCache is a worker's handle on the fleet cache. When the worker
// stops, it refuses new calls with errStopped and waits for those in
// progress to return and for a lock taken through it to be released, so
// that the worker's Redis client can be closed without leaving the fleet's
// lock held until its lease runs out. It is safe for concurrent use.
type workerCache struct {
	rc *rediscache.Cache

	mu      sync.Mutex     // guards stopped and active.Add
	stopped bool           //
	active  sync.WaitGroup // calls in progress and locks held
}

var (
	_ tokencache.Cache  = (*workerCache)(nil)
	_ tokencache.Locker = (*workerCache)(nil)
)

// begin counts a call in; it reports false once the worker has stopped.
func (c *workerCache) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.active.Add(1)
	return true
}

// stop refuses new calls and waits for the calls and locks in progress.
func (c *workerCache) stop() {
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.active.Wait()
}

func (c *workerCache) Load(ctx context.Context, key string) (*tokencache.Entry, error) {
	if !c.begin() {
		return nil, errStopped
	}
	defer c.active.Done()
	return c.rc.Load(ctx, key)
}

func (c *workerCache) Store(ctx context.Context, key string, e *tokencache.Entry) error {
	if !c.begin() {
		return errStopped
	}
	defer c.active.Done()
	return c.rc.Store(ctx, key, e)
}

func (c *workerCache) Delete(ctx context.Context, key string) error {
	if !c.begin() {
		return errStopped
	}
	defer c.active.Done()
	return c.rc.Delete(ctx, key)
}

func (c *workerCache) Lock(ctx context.Context, key string) (func() error, error) {
	if !c.begin() {
		return nil, errStopped
	}
	unlock, err := c.rc.Lock(ctx, key)
	if err != nil {
		c.active.Done()
		return nil, err
	}
	var once sync.Once
	return func() error {
		err := unlock()
		once.Do(c.active.Done)
		return err
	}, nil
}

// stoppableHandler is a slog.Handler that drops every record once stopped
// is set.
type stoppableHandler struct {
	slog.Handler
	stopped *atomic.Bool
}

func (h stoppableHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return !h.stopped.Load() && h.Handler.Enabled(ctx, level)
}

func (h stoppableHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.stopped.Load() {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h stoppableHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return stoppableHandler{h.Handler.WithAttrs(attrs), h.stopped}
}

func (h stoppableHandler) WithGroup(name string) slog.Handler {
	return stoppableHandler{h.Handler.WithGroup(name), h.stopped}
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

// get GETs url and returns the response status. A FHIR server answers a
// search with a Bundle; the body is read (to reuse the connection) and
// dropped.
func get(ctx context.Context, client *http.Client, url string) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodySize)); err != nil {
		return resp.StatusCode, fmt.Errorf("reading the FHIR response: %w", err)
	}
	return resp.StatusCode, nil
}
