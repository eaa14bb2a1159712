// Command fleet shows many workers, as separate processes or hosts would
// be, sharing one client registration through a token cache in Redis
// (package tokencache/rediscache): the whole fleet makes about one token
// request per token lifetime instead of one per worker, which matters where
// the authorization server rate-limits token requests, as Epic does.
//
// Every worker has its own Redis client, its own HTTP connections and its own
// oauthclient.TokenSource, exactly as separate processes would; all they
// share is the Redis server and the client registration. When a worker needs
// a token, its TokenSource first looks in Redis (another worker may have
// fetched one), then takes the fleet-wide lock for the cache key, looks
// again, and only then asks the token endpoint; the new token goes to Redis
// for the others.
//
// Run without arguments, it starts an embedded test authorization server
// (package oauthtest) whose tokens live 3 seconds, and 8 workers that each
// read Patients 8 times, a second apart (their starts spread over that
// second), through a Redis server at 127.0.0.1:6379. Each line says how
// many requests a worker made and how many of the tokens it used it fetched
// itself or took from the fleet cache; the last line counts the token
// requests the server received:
//
//	$ go run ./examples/fleet
//	embedded test server at http://127.0.0.1:44451, tokens live 3s
//	fleet cache: Redis at 127.0.0.1:6379, key prefix "oauthkit:", entries not encrypted (see -encryption-key-file)
//	8 workers, each with its own Redis client and TokenSource, 8 requests each, 1s apart
//	worker 1: 8 requests, 200 OK; tokens: 1 fetched itself, 4 from the fleet cache
//	worker 2: 8 requests, 200 OK; tokens: 1 fetched itself, 5 from the fleet cache
//	worker 3: 8 requests, 200 OK; tokens: 1 fetched itself, 5 from the fleet cache
//	worker 4: 8 requests, 200 OK; tokens: 0 fetched itself, 6 from the fleet cache
//	…
//	worker 8: 8 requests, 200 OK; tokens: 1 fetched itself, 5 from the fleet cache
//	fleet: 8 workers, 64 requests, 6 token requests
//
// Without the shared cache each worker would ask for its own tokens: 8 times
// as many token requests. A token is replaced well before it expires (see
// the package documentation of oauthclient, "Token lifecycle"): a 3 s token
// is replaced after about 1.3 s, so the fleet asks for a new token about that
// often, as often as a single process would.
//
// The demo needs a Redis server. If none answers at the address, it says so
// and exits 1; start one, for example with
//
//	redis-server --port 6379 --save ''
//
// or name another with -redis ADDR (env REDIS_ADDR). A Redis that requires
// authentication takes REDIS_USERNAME and REDIS_PASSWORD from the
// environment (never from flags, which other users can see); -redis-tls
// connects with TLS. -workers, -requests and -interval change the size and
// length of the run; -key-prefix the Redis key prefix; -v logs each token
// request and cache decision to stderr.
//
// Tokens in Redis are readable by everyone who can read Redis. With
// -encryption-key-file, a file of 32 random bytes, the entries are encrypted
// with AES-256-GCM; every member of a fleet needs the same key:
//
//	(umask 077; head -c 32 /dev/urandom > fleet.key)
//	go run ./examples/fleet -encryption-key-file fleet.key
//
// Against a real server, give its FHIR base URL and your client
// registration as for examples/epic-backend: -fhir-base (FHIR_BASE),
// -client-id (CLIENT_ID), -key (PRIVATE_KEY_FILE), -kid (KEY_ID) and -scope
// (SCOPES). The last line then counts the tokens the fleet obtained (calls
// of the TokenSources' OnTokenChange hooks); it is 0 when a token that an
// earlier run left in Redis is still valid.
//
// The program never prints tokens, assertions or keys. It exits 0 when every
// request was answered 200 OK, 1 otherwise (or when Redis cannot be
// reached), and 2 on a usage error.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/oauthkit/oauthkit/examples/internal/demo"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache/rediscache"
)

// demoClientID is the client the embedded demo server registers.
const demoClientID = "fleet-demo"

// demoTokenLifetime is how long the embedded demo server's tokens live.
// The tests shorten it to run faster.
var demoTokenLifetime = 3 * time.Second

// encryptionKeySize is the size of an -encryption-key-file (AES-256).
const encryptionKeySize = 32

// pingTimeout bounds the check that Redis answers.
const pingTimeout = 5 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command-line settings.
type options struct {
	demo.Connection   // -fhir-base, -client-id, -key, -kid, -scope, -path
	redisAddr         string
	redisTLS          bool
	keyPrefix         string
	encryptionKeyFile string
	workers           int
	requests          int
	interval          time.Duration
	verbose           bool
}

// run runs the program with args (without the program name) and returns its
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return demo.UsageExit("fleet", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	f := &fleet{
		Connection: opts.Connection,
		requests:   opts.requests,
		interval:   opts.interval,
		logger:     demo.NewLogger(stderr, opts.verbose),
		redisOptions: redis.Options{
			Addr: opts.redisAddr,
			// Credentials from the environment only: command lines are
			// visible to other users of the machine.
			Username: os.Getenv("REDIS_USERNAME"),
			Password: os.Getenv("REDIS_PASSWORD"),
			// Calls end when the caller's context does.
			ContextTimeoutEnabled: true,
		},
		cacheOptions: rediscache.Options{KeyPrefix: opts.keyPrefix},
	}
	if opts.redisTLS {
		host, _, _ := net.SplitHostPort(opts.redisAddr)
		f.redisOptions.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if opts.encryptionKeyFile != "" {
		if f.cacheOptions.EncryptionKey, err = readEncryptionKey(opts.encryptionKeyFile); err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
	}
	if err := f.ping(ctx); err != nil {
		var rerr redis.Error
		if errors.As(err, &rerr) {
			fmt.Fprintf(stderr, "fleet: Redis at %s refused PING: %v\n", opts.redisAddr, err)
			if redis.HasErrorPrefix(err, "NOAUTH") || redis.HasErrorPrefix(err, "WRONGPASS") {
				fmt.Fprintln(stderr, "fleet: set REDIS_USERNAME and REDIS_PASSWORD in the environment")
			}
		} else {
			fmt.Fprintf(stderr, "fleet: no Redis at %s: start one with \"redis-server --port %s\" or pass -redis\n", opts.redisAddr, portOf(opts.redisAddr))
			if opts.redisTLS {
				fmt.Fprintf(stderr, "fleet: (%v; with -redis-tls, does the server at %s speak TLS?)\n", err, opts.redisAddr)
			} else {
				fmt.Fprintf(stderr, "fleet: (%v)\n", err)
			}
		}
		return 1
	}

	var srv *oauthtest.Server
	if opts.FHIRBase == "" {
		srv, f.signer, err = demo.StartServer(demoClientID, demoTokenLifetime)
		if err != nil {
			fmt.Fprintln(stderr, "fleet:", err)
			return 1
		}
		defer srv.Close()
		f.FHIRBase, f.ClientID = srv.FHIRBase(), demoClientID
		fmt.Fprintf(stdout, "embedded test server at %s, tokens live %s\n", srv.URL, demoTokenLifetime)
	} else if f.signer, err = opts.LoadSigner(); err != nil {
		fmt.Fprintln(stderr, "fleet:", err)
		return 1
	}
	encrypted := "entries not encrypted (see -encryption-key-file)"
	if len(f.cacheOptions.EncryptionKey) > 0 {
		encrypted = "entries encrypted (AES-256-GCM)"
	}
	fmt.Fprintf(stdout, "fleet cache: Redis at %s, key prefix %q, %s\n", opts.redisAddr, opts.keyPrefix, encrypted)
	fmt.Fprintf(stdout, "%d %s, each with its own Redis client and TokenSource, %d %s each, %s apart\n",
		opts.workers, demo.Plural(opts.workers, "worker", "workers"), opts.requests, demo.Plural(opts.requests, "request", "requests"), opts.interval)

	results := f.run(ctx, opts.workers)

	failed := false
	total := 0
	for i, r := range results {
		total += r.requests
		if r.err != nil {
			failed = true
			fmt.Fprintf(stdout, "worker %d: %d %s, then failed\n", i+1, r.requests, demo.Plural(r.requests, "request", "requests"))
			fmt.Fprintf(stderr, "fleet: worker %d: %v\n", i+1, r.err)
			continue
		}
		fmt.Fprintf(stdout, "worker %d: %d %s, 200 OK; tokens: %d fetched itself, %d from the fleet cache\n",
			i+1, r.requests, demo.Plural(r.requests, "request", "requests"), r.fetched, r.fromCache)
	}
	tokenRequests := int(f.tokens.Load())
	if srv != nil {
		// The server's counter, not the client, tells what happened.
		tokenRequests = srv.Stats().TokenRequests
		// The demo server's port changes every time, and with it the
		// cache key: its token is useless after the demo.
		f.deleteEntry(results)
	}
	fmt.Fprintf(stdout, "fleet: %d %s, %d %s, %d token %s\n",
		opts.workers, demo.Plural(opts.workers, "worker", "workers"),
		total, demo.Plural(total, "request", "requests"),
		tokenRequests, demo.Plural(tokenRequests, "request", "requests"))
	if failed {
		return 1
	}
	return 0
}

// parseFlags reads the flags; environment variables supply the defaults.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	var o options
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.AddFlags(fs, "an embedded test server")
	fs.StringVar(&o.redisAddr, "redis", demo.EnvOr("REDIS_ADDR", "127.0.0.1:6379"), "Redis `address`, host:port (env REDIS_ADDR); REDIS_USERNAME and REDIS_PASSWORD from the environment")
	fs.BoolVar(&o.redisTLS, "redis-tls", false, "connect to Redis with TLS")
	fs.StringVar(&o.keyPrefix, "key-prefix", rediscache.DefaultKeyPrefix, "`prefix` of the Redis keys")
	fs.StringVar(&o.encryptionKeyFile, "encryption-key-file", "", "`file` of 32 random bytes: encrypt the cached tokens with AES-256-GCM (every worker of a fleet needs the same key)")
	fs.IntVar(&o.workers, "workers", 8, "number of workers, each with its own Redis client and TokenSource")
	fs.IntVar(&o.requests, "requests", 8, "number of requests per worker")
	fs.DurationVar(&o.interval, "interval", time.Second, "pause between a worker's requests")
	fs.BoolVar(&o.verbose, "v", false, "log token fetches and cache decisions (never the tokens)")
	if err := demo.Parse(fs, args); err != nil {
		return nil, err
	}
	switch {
	case o.workers < 1:
		return nil, errors.New("-workers must be at least 1")
	case o.requests < 1:
		return nil, errors.New("-requests must be at least 1")
	case o.interval < 0:
		return nil, errors.New("-interval must not be negative")
	case o.redisAddr == "":
		return nil, errors.New("-redis (or REDIS_ADDR) must not be empty")
	case strings.ContainsAny(o.keyPrefix, "{}"):
		return nil, errors.New("-key-prefix must not contain '{' or '}'")
	}
	return &o, o.Check()
}

// portOf returns the port of a host:port address, for the hint to start a
// Redis server on it.
func portOf(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" {
		return port
	}
	return "6379"
}

// readEncryptionKey reads a 32-byte key file, reading no more than 33
// bytes of it. Errors name the file and its size, never its content.
func readEncryptionKey(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("-encryption-key-file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, encryptionKeySize+1))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("-encryption-key-file: %w", err)
	}
	if len(b) != encryptionKeySize {
		size := fmt.Sprintf("%d bytes", len(b))
		if len(b) > encryptionKeySize {
			size = fmt.Sprintf("more than %d bytes", encryptionKeySize)
		}
		clear(b)
		return nil, fmt.Errorf("-encryption-key-file: %s holds %s, want %d (head -c 32 /dev/urandom > %s)", name, size, encryptionKeySize, name)
	}
	return b, nil
}
