package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// secretEnv names the environment variable that may hold the client secret.
const secretEnv = "OAUTHKIT_CLIENT_SECRET"

// defaultKeyringService is the keychain service used by "keyring" without
// a service name, and by login and the refresh_token grant by default.
const defaultKeyringService = "oauthkit"

// maxSecretFileSize bounds a client secret file.
const maxSecretFileSize = 64 << 10

// scopeList is a repeatable flag; each value may hold several
// space-separated scopes.
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, " ") }

func (s *scopeList) Set(v string) error {
	*s = append(*s, strings.Fields(v)...)
	return nil
}

// connFlags are the flags shared by token, header, get and login.
type connFlags struct {
	fs    *flag.FlagSet
	login bool

	profile      string
	tokenURL     string
	fhirBase     string
	authURL      string
	clientID     string
	key          string
	kid          string
	alg          string
	jku          string
	auth         string
	scopes       scopeList
	grant        string
	subject      string
	cache        string
	secretFile   string
	timeout      time.Duration
	verbose      bool
	insecureHTTP bool
	dpopKey      string // -dpop-key (dpop.go)

	// onTokenChange, if set, is called with each token fetched (not
	// found in a cache) by this run.
	onTokenChange func(*oauth2.Token)
}

// addConnFlags registers the connection flags on fs. login selects the
// defaults of the login command (a longer timeout, the auth URL flag).
func addConnFlags(fs *flag.FlagSet, login bool) *connFlags {
	c := &connFlags{fs: fs, login: login}
	fs.StringVar(&c.profile, "profile", "", "read settings from profile `NAME` of the configuration file; flags override them")
	fs.StringVar(&c.tokenURL, "token-url", "", "token endpoint `URL`")
	fs.StringVar(&c.fhirBase, "fhir-base", "", "FHIR base `URL`: discover the endpoints from its .well-known/smart-configuration")
	if login {
		fs.StringVar(&c.authURL, "auth-url", "", "authorization endpoint `URL` (default: from -fhir-base discovery)")
	}
	fs.StringVar(&c.clientID, "client-id", "", "OAuth client `ID`")
	fs.StringVar(&c.key, "key", "", "private key `file` (PEM or JWK) that signs client assertions (private_key_jwt) and jwt_bearer assertions")
	fs.StringVar(&c.kid, "kid", "", "key `ID` of -key (default: the kid stored with the key by 'oauthkit keygen', else its RFC 7638 JWK thumbprint, as printed by 'oauthkit jwks')")
	fs.StringVar(&c.alg, "alg", "", "signing `algorithm` of -key (default: RS384 for RSA, ES256/ES384/ES512 by curve, EdDSA)")
	fs.StringVar(&c.jku, "jku", "", "`URL` of the JWK Set holding -key's public key, sent as the assertions' jku header (optional; Epic does not need it)")
	fs.StringVar(&c.auth, "auth", "", "client authentication `method`: basic, post, private_key_jwt or none (default: basic with a secret, private_key_jwt with -key, else none)")
	fs.Var(&c.scopes, "scope", "`scope` to request; repeatable, or several separated by spaces")
	if !login {
		fs.StringVar(&c.grant, "grant", "", "`grant` type: client_credentials, jwt_bearer or refresh_token (default client_credentials)")
		fs.StringVar(&c.subject, "subject", "", "`subject` (sub claim) of the jwt_bearer assertion")
	}
	fs.StringVar(&c.cache, "cache", "", "token `cache`: memory, file[:DIR] or keyring[:SERVICE] (default "+defaultCacheHelp(login)+")")
	fs.StringVar(&c.secretFile, "secret-file", "", "read the client secret from `file` (or set $"+secretEnv+"; never on the command line)")
	defTimeout := 60 * time.Second
	if login {
		defTimeout = 5 * time.Minute
	}
	fs.DurationVar(&c.timeout, "timeout", defTimeout, "give up after this `duration`")
	fs.BoolVar(&c.verbose, "v", false, "log debug lines to stderr (secrets are never logged)")
	fs.BoolVar(&c.insecureHTTP, "insecure-http", false, "allow plain http:// token endpoints on non-loopback hosts; MUST NOT be used in production")
	fs.StringVar(&c.dpopKey, "dpop-key", "", dpopKeyUsage)
	return c
}

func defaultCacheHelp(login bool) string {
	if login {
		return "keyring:" + defaultKeyringService
	}
	return "file in the user cache directory; keyring:" + defaultKeyringService + " with -grant refresh_token"
}

// settings are the connection flags merged with the profile.
type settings struct {
	tokenURL, fhirBase, authURL string
	clientID, key, kid, alg     string
	jku                         string
	auth, grant, subject, cache string
	secretFile                  string
	secretFromEnv               bool
	scopes                      []string
	timeout                     time.Duration
	verbose, insecureHTTP       bool
	login                       bool
	dpopKey                     string
	onTokenChange               func(*oauth2.Token)
}

// settings merges the flags with the profile named by -profile (flags
// win) and checks that they fit together.
func (c *connFlags) settings(e *env) (*settings, error) {
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	p := &profile{}
	if c.profile != "" {
		var err error
		if p, err = loadProfile(c.profile, e.getenv); err != nil {
			return nil, err
		}
	}
	pick := func(name, flagVal, profVal string) string {
		if set[name] {
			return flagVal
		}
		return profVal
	}
	s := &settings{
		tokenURL:     pick("token-url", c.tokenURL, p.TokenURL),
		fhirBase:     pick("fhir-base", c.fhirBase, p.FHIRBase),
		authURL:      pick("auth-url", c.authURL, p.AuthURL),
		clientID:     pick("client-id", c.clientID, p.ClientID),
		key:          pick("key", c.key, p.Key),
		kid:          pick("kid", c.kid, p.KID),
		alg:          pick("alg", c.alg, p.Alg),
		jku:          pick("jku", c.jku, p.JKU),
		auth:         pick("auth", c.auth, p.Auth),
		grant:        pick("grant", c.grant, p.Grant),
		subject:      pick("subject", c.subject, p.Subject),
		cache:        pick("cache", c.cache, p.Cache),
		scopes:       p.Scopes,
		timeout:      c.timeout,
		verbose:      c.verbose,
		insecureHTTP: c.insecureHTTP || (!set["insecure-http"] && p.InsecureHTTP),
		login:        c.login,
		dpopKey:      c.dpopKey,

		onTokenChange: c.onTokenChange,
	}
	if set["scope"] {
		s.scopes = c.scopes
	}
	// The secret file: -secret-file, else $OAUTHKIT_CLIENT_SECRET, else
	// the profile's secret_file.
	switch {
	case set["secret-file"]:
		s.secretFile = c.secretFile
	case e.getenv(secretEnv) != "":
		s.secretFromEnv = true
	default:
		s.secretFile = p.SecretFile
	}
	return s, s.check()
}

func (s *settings) hasSecret() bool { return s.secretFile != "" || s.secretFromEnv }

// check reports inconsistent settings as usage errors.
func (s *settings) check() error {
	if s.tokenURL == "" && s.fhirBase == "" {
		return usagef("-token-url or -fhir-base is required")
	}
	if s.clientID == "" {
		return usagef("-client-id is required")
	}
	if s.timeout <= 0 {
		return usagef("-timeout must be positive")
	}
	if s.login {
		s.grant = "refresh_token"
	}
	switch s.grant {
	case "", "client_credentials":
		s.grant = "client_credentials"
	case "jwt_bearer", "jwt-bearer", oauthclient.GrantTypeJWTBearer:
		s.grant = "jwt_bearer"
		if s.subject == "" || s.key == "" {
			return usagef("-grant jwt_bearer needs -subject and -key")
		}
	case "refresh_token":
	default:
		return usagef("unknown -grant %q (want client_credentials, jwt_bearer or refresh_token)", s.grant)
	}
	switch s.auth {
	case "":
		switch {
		case s.hasSecret() && s.key != "" && s.grant != "jwt_bearer":
			return usagef("both a client secret and -key are given: choose with -auth basic, post or private_key_jwt")
		case s.hasSecret():
			s.auth = "basic"
		case s.key != "" && s.grant != "jwt_bearer":
			s.auth = "private_key_jwt"
		default:
			s.auth = "none"
		}
	case "basic", "client_secret_basic":
		s.auth = "basic"
	case "post", "client_secret_post":
		s.auth = "post"
	case "private_key_jwt", "jwt":
		s.auth = "private_key_jwt"
	case "none":
	default:
		return usagef("unknown -auth %q (want basic, post, private_key_jwt or none)", s.auth)
	}
	switch {
	case (s.auth == "basic" || s.auth == "post") && !s.hasSecret():
		return usagef("-auth %s needs a client secret: -secret-file or $%s", s.auth, secretEnv)
	case s.auth == "private_key_jwt" && s.key == "":
		return usagef("-auth private_key_jwt needs -key")
	case s.kid != "" && s.key == "":
		return usagef("-kid needs -key")
	case s.alg != "" && s.key == "":
		return usagef("-alg needs -key")
	case s.jku != "" && s.key == "":
		return usagef("-jku needs -key")
	}
	if s.cache == "" {
		s.cache = "file"
		if s.grant == "refresh_token" {
			s.cache = "keyring:" + defaultKeyringService
		}
	}
	if s.grant == "refresh_token" && s.cache == "memory" {
		return usagef("-grant refresh_token needs a persistent -cache (file or keyring) holding the token of 'oauthkit login'")
	}
	return nil
}

// logger returns the -v logger, or nil.
func (s *settings) logger(e *env) *slog.Logger {
	if !s.verbose {
		return nil
	}
	return slog.New(newTidyHandler(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// endpoints fills in the token (and, for login, authorization) endpoint
// from SMART discovery when they are not given.
func (s *settings) endpoints(ctx context.Context, log *slog.Logger) error {
	if s.fhirBase == "" || (s.tokenURL != "" && (!s.login || s.authURL != "")) {
		return nil
	}
	sc, err := oauthclient.DiscoverSMART(ctx, s.fhirBase)
	if err != nil {
		return fmt.Errorf("-fhir-base %s: %w", redactURL(s.fhirBase), err)
	}
	if s.tokenURL == "" {
		s.tokenURL = sc.TokenEndpoint
	}
	if s.login && s.authURL == "" {
		s.authURL = sc.AuthorizationEndpoint
	}
	if log != nil {
		log.Debug("oauthkit: endpoints from SMART configuration", "token_endpoint", s.tokenURL, "authorization_endpoint", sc.AuthorizationEndpoint)
	}
	return nil
}

// clientAuth builds the client authentication (and loads the signer,
// which the jwt_bearer grant shares).
func (s *settings) clientAuth(e *env, log *slog.Logger) (oauthclient.ClientAuth, oauthclient.AssertionSigner, error) {
	var signer oauthclient.AssertionSigner
	if s.key != "" {
		kc, err := loadSigner(s.key, s.kid, s.alg, s.jku)
		if err != nil {
			return nil, nil, err
		}
		signer = kc.signer
		if log != nil {
			log.Debug("oauthkit: signing key", "file", kc.file, "alg", kc.signer.Algorithm(), "kid", kc.signer.KeyID(), "kid_from", kc.kidSource, "jku", kc.signer.JKU())
			use := "client assertion"
			if s.grant == "jwt_bearer" && s.auth != "private_key_jwt" {
				use = "jwt_bearer assertion"
			}
			signer = &verboseSigner{Signer: kc.signer, use: use, log: log}
		}
	}
	switch s.auth {
	case "basic", "post":
		secret, err := s.readSecret(e)
		if err != nil {
			return nil, nil, err
		}
		if s.auth == "post" {
			return oauthclient.ClientSecretPost{Secret: secret}, signer, nil
		}
		return oauthclient.ClientSecretBasic{Secret: secret}, signer, nil
	case "private_key_jwt":
		return oauthclient.PrivateKeyJWT{Signer: signer}, signer, nil
	default:
		return oauthclient.NoClientAuth{}, signer, nil
	}
}

// readSecret returns the client secret from the secret file or the
// environment. Error messages name the file, never its contents.
func (s *settings) readSecret(e *env) (string, error) {
	if s.secretFromEnv {
		return strings.TrimSpace(e.getenv(secretEnv)), nil
	}
	f, err := os.Open(s.secretFile)
	if err != nil {
		return "", fmt.Errorf("client secret: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 && filepath.Separator == '/' {
		fmt.Fprintf(e.stderr, "oauthkit: warning: %s is readable by other users (chmod 600 %s)\n", s.secretFile, s.secretFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("client secret: read %s: %w", s.secretFile, err)
	}
	if len(b) > maxSecretFileSize {
		return "", fmt.Errorf("client secret: %s is too large to be a secret", s.secretFile)
	}
	secret := strings.TrimSpace(string(b))
	clear(b)
	if secret == "" {
		return "", fmt.Errorf("client secret: %s is empty", s.secretFile)
	}
	return secret, nil
}

// tokenSource resolves the endpoints and credentials and returns the
// TokenSource with a description of its cache.
func (s *settings) tokenSource(ctx context.Context, e *env) (*oauthclient.TokenSource, string, error) {
	log := s.logger(e)
	if err := s.endpoints(ctx, log); err != nil {
		return nil, "", err
	}
	cfg, desc, err := s.config(e, log)
	if err != nil {
		return nil, "", err
	}
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		return nil, "", err
	}
	return ts, desc, nil
}

// config builds the oauthclient.Config. The same settings always give
// the same Config, hence the same cache key: what login stores, token
// with -grant refresh_token finds.
func (s *settings) config(e *env, log *slog.Logger) (oauthclient.Config, string, error) {
	auth, signer, err := s.clientAuth(e, log)
	if err != nil {
		return oauthclient.Config{}, "", err
	}
	cache, desc, err := openCache(s.cache)
	if err != nil {
		return oauthclient.Config{}, "", err
	}
	var grant oauthclient.Grant
	switch s.grant {
	case "jwt_bearer":
		grant = oauthclient.JWTBearer{Signer: signer, Subject: s.subject}
	case "refresh_token":
		grant = oauthclient.RefreshToken{}
	default:
		grant = oauthclient.ClientCredentials{}
	}
	cfg := oauthclient.Config{
		TokenURL:          s.tokenURL,
		ClientID:          s.clientID,
		Auth:              auth,
		Grant:             grant,
		Scopes:            s.scopes,
		Cache:             cache,
		Logger:            log,
		InsecureAllowHTTP: s.insecureHTTP,
		CacheKey:          cacheKeyFor(s, grant),
		OnTokenChange:     s.onTokenChange,
		// The whole command is bounded by -timeout through its context.
		HTTPClient: &http.Client{},
	}
	if s.fhirBase != "" {
		// The token goes only to the FHIR server it is for.
		cfg.Origins = []string{s.fhirBase}
	}
	if cfg.DPoPKey, err = loadDPoPKey(s.dpopKey); err != nil {
		return oauthclient.Config{}, "", err
	}
	return cfg, desc, nil
}
