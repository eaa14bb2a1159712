package oauthclient

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// GrantTypeDeviceCode is the grant_type of the device authorization grant
// (RFC 8628 §3.4).
const GrantTypeDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Device login errors, checked with errors.Is. When the token endpoint
// said so, the error also wraps its *TokenError (errors.As).
var (
	// ErrDeviceAccessDenied: the user denied the authorization request
	// (access_denied).
	ErrDeviceAccessDenied = errors.New("oauthclient: device login: the user denied access")
	// ErrDeviceCodeExpired: the device code expired before the user
	// approved the request (expired_token, or its expires_in passed).
	ErrDeviceCodeExpired = errors.New("oauthclient: device login: the device code expired before the user approved it")
)

// Polling intervals of the device flow (RFC 8628 §3.2, §3.5).
const (
	defaultDeviceInterval = 5 * time.Second  // when the server names none
	deviceSlowDownStep    = 5 * time.Second  // added on every slow_down
	maxDeviceInterval     = 10 * time.Minute // bound on a server-provided interval or Retry-After
	maxDeviceBackoff      = time.Minute      // bound on the back-off after network errors
)

// DeviceCode is what the user needs to approve a device login: where to
// go and which code to enter. It holds no secret (the device code itself
// stays inside DeviceLogin); the user code is meant to be shown.
type DeviceCode struct {
	// UserCode is the code the user enters at VerificationURI.
	UserCode string
	// VerificationURI is the page where the user enters UserCode.
	VerificationURI string
	// VerificationURIComplete, when the server sent one, is
	// VerificationURI with the user code included (for a link or a QR
	// code): the user does not need to type the code.
	VerificationURIComplete string
	// ExpiresIn is how long the codes are valid.
	ExpiresIn time.Duration
	// Interval is the polling interval the server asked for (5 s when it
	// named none).
	Interval time.Duration
}

// DeviceLoginConfig configures DeviceLogin: the device authorization grant
// (RFC 8628) for tools on machines without a browser. The user approves
// the login on another device.
type DeviceLoginConfig struct {
	// DeviceAuthURL is the device authorization endpoint
	// (ServerMetadata.DeviceAuthorizationEndpoint). Required.
	DeviceAuthURL string
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID is the client identifier. Required.
	ClientID string
	// Auth authenticates a confidential client at both endpoints.
	// Optional; default NoClientAuth (a public client).
	Auth ClientAuth
	// Scopes requested. Optional.
	Scopes []string
	// Params are extra device authorization request parameters (for
	// SMART, "aud" = the FHIR base URL). Optional.
	Params url.Values
	// Prompt shows the user where to go and which code to enter. An error
	// it returns ends DeviceLogin. Optional; default prints the
	// instructions to Out.
	Prompt func(DeviceCode) error
	// Out receives the default instructions. Optional; default os.Stderr.
	Out io.Writer
	// HTTPClient is used for both endpoints. Optional.
	HTTPClient *http.Client
	// InsecureAllowHTTP allows http:// endpoints to non-loopback hosts.
	// It MUST NOT be used outside tests on isolated networks.
	InsecureAllowHTTP bool
	// DPoPKey, when set, binds the tokens to a DPoP key (RFC 9449): every
	// token request carries a proof. Use the same key as Config.DPoPKey of
	// the source the token is seeded into. Optional.
	DPoPKey crypto.Signer
	// Now is the clock that decides when the device code has expired.
	// Optional; default time.Now.
	Now func() time.Time
	// Sleep waits d, or until ctx is done and then returns ctx's error.
	// DeviceLogin calls it before every poll of the token endpoint, with
	// the interval the server allows. Optional; default a timer. Tests set
	// it (with Now) to run the flow without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
}

// String describes c without secrets: no credentials, URLs without their
// query, Params by name only. DeviceLoginConfig has value receivers for its
// formatting methods so that a value redacts as well as a pointer.
func (c DeviceLoginConfig) String() string {
	return fmt.Sprintf("oauthclient.DeviceLoginConfig{DeviceAuthURL:%q TokenURL:%q ClientID:%q Auth:%T Scopes:%q Params:%v}",
		redactURL(c.DeviceAuthURL), redactURL(c.TokenURL), c.ClientID, c.Auth, c.Scopes, names(c.Params))
}

// GoString describes c without secrets.
func (c DeviceLoginConfig) GoString() string { return c.String() }

// Format prints the redacted form for every fmt verb.
func (c DeviceLoginConfig) Format(f fmt.State, _ rune) { fmt.Fprint(f, c.String()) }

// LogValue prints the redacted form in slog output.
func (c DeviceLoginConfig) LogValue() slog.Value { return slog.StringValue(c.String()) }

// deviceError is a device login failure: errors.Is matches its sentinel,
// errors.As the token endpoint's *TokenError.
type deviceError struct {
	sentinel error
	te       *TokenError
}

func (e *deviceError) Error() string { return e.sentinel.Error() + ": " + e.te.detail() }

func (e *deviceError) Unwrap() []error { return []error{e.sentinel, e.te} }

// DeviceLogin runs the device authorization grant (RFC 8628): it asks the
// device authorization endpoint for a user code, shows it with Prompt,
// then polls the token endpoint until the user approves (a token is
// returned, normally with a refresh token, ready for TokenSource.Seed
// with a RefreshToken grant and a persistent cache), denies
// (ErrDeviceAccessDenied), the code expires (ErrDeviceCodeExpired) or ctx
// ends.
//
// It polls at the interval the server names (5 s when it names none),
// adds 5 s for every slow_down and keeps the longer interval, and waits
// longer (doubling, up to a minute, or as long as Retry-After asks) after
// a network error or a 5xx or 429 answer: it never polls faster than the
// server allows. The device code is a credential: it is never printed and
// is redacted from errors.
func DeviceLogin(ctx context.Context, cfg DeviceLoginConfig) (*oauth2.Token, error) {
	if cfg.DeviceAuthURL == "" || cfg.TokenURL == "" || cfg.ClientID == "" {
		return nil, errors.New("oauthclient: device login: DeviceAuthURL, TokenURL and ClientID are required")
	}
	for _, u := range []string{cfg.DeviceAuthURL, cfg.TokenURL} {
		if err := checkURL(u, cfg.InsecureAllowHTTP); err != nil {
			return nil, fieldError("DeviceLoginConfig", err)
		}
	}
	if cfg.Auth == nil {
		cfg.Auth = NoClientAuth{}
	}
	if cfg.Out == nil {
		cfg.Out = os.Stderr
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = func(ctx context.Context, d time.Duration) error { return sleep(ctx, d, nil) }
	}
	prover, err := newDPoPProver(cfg.DPoPKey)
	if err != nil {
		return nil, fmt.Errorf("oauthclient: device login: %w", err)
	}
	hc := tokenHTTPClient(cfg.HTTPClient, cfg.Auth)

	start := cfg.Now()
	dc, secret, err := requestDeviceCode(ctx, hc, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Prompt != nil {
		if err := cfg.Prompt(dc); err != nil {
			return nil, fmt.Errorf("oauthclient: device login: prompt: %w", err)
		}
	} else {
		printDeviceCode(cfg.Out, dc)
	}
	return pollDeviceToken(ctx, hc, prover, cfg, dc, secret, start)
}

// deviceAuthResponse is the RFC 8628 §3.2 answer.
type deviceAuthResponse struct {
	DeviceCode              string      `json:"device_code"`
	UserCode                string      `json:"user_code"`
	VerificationURI         string      `json:"verification_uri"`
	VerificationURL         string      `json:"verification_url"` // a name some servers use
	VerificationURIComplete string      `json:"verification_uri_complete"`
	ExpiresIn               json.Number `json:"expires_in"`
	Interval                json.Number `json:"interval"`
}

// requestDeviceCode sends the device authorization request and returns
// what to show the user and, separately, the device code.
func requestDeviceCode(ctx context.Context, hc *http.Client, cfg DeviceLoginConfig) (DeviceCode, string, error) {
	form := url.Values{}
	if len(cfg.Scopes) > 0 {
		form.Set("scope", strings.Join(cfg.Scopes, " "))
	}
	for k, vs := range cfg.Params {
		form[k] = vs
	}
	// The client assertion audience is the token endpoint, which servers
	// accept at every endpoint that authenticates clients.
	ar := &AuthRequest{ClientID: cfg.ClientID, TokenURL: cfg.TokenURL, Form: form, Header: http.Header{}, Now: cfg.Now()}
	if err := cfg.Auth.Apply(ar); err != nil {
		return DeviceCode{}, "", fmt.Errorf("oauthclient: device login: %w", err)
	}
	if !form.Has("client_id") && ar.Header.Get("Authorization") == "" {
		form.Set("client_id", cfg.ClientID)
	}
	resp, err := tokenendpoint.Post(ctx, hc, &tokenendpoint.Request{URL: cfg.DeviceAuthURL, Form: form, Header: ar.Header})
	if err != nil {
		return DeviceCode{}, "", fmt.Errorf("oauthclient: device login: device authorization request: %w", tokenError(err))
	}
	if resp.StatusCode != http.StatusOK {
		_, err := resp.Parse(cfg.Now()) // an RFC 6749 §5.2 error, or a description of the answer
		if err == nil {
			err = &tokenendpoint.Error{StatusCode: resp.StatusCode, Err: tokenendpoint.ErrMalformed}
		}
		return DeviceCode{}, "", fmt.Errorf("oauthclient: device login: device authorization request: %w", tokenError(err))
	}
	malformed := func(what string) error {
		return fmt.Errorf("oauthclient: device login: device authorization response: %s: %w", what, ErrMalformedResponse)
	}
	if len(resp.Body) > tokenendpoint.MaxBodySize {
		return DeviceCode{}, "", malformed("body larger than 1 MiB")
	}
	var r deviceAuthResponse
	dec := json.NewDecoder(strings.NewReader(string(resp.Body)))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return DeviceCode{}, "", malformed("not a JSON object")
	}
	if r.VerificationURI == "" {
		r.VerificationURI = r.VerificationURL
	}
	switch {
	case r.DeviceCode == "":
		return DeviceCode{}, "", malformed("no device_code")
	case r.UserCode == "":
		return DeviceCode{}, "", malformed("no user_code")
	case r.VerificationURI == "":
		return DeviceCode{}, "", malformed("no verification_uri")
	}
	expiresIn, ok := seconds(r.ExpiresIn)
	if !ok || expiresIn <= 0 {
		return DeviceCode{}, "", malformed("expires_in missing or not a positive number")
	}
	interval, ok := seconds(r.Interval)
	if !ok {
		return DeviceCode{}, "", malformed("interval is not a number")
	}
	if interval <= 0 {
		interval = defaultDeviceInterval
	}
	dc := DeviceCode{
		UserCode:                tokenendpoint.Printable(r.UserCode, 64),
		VerificationURI:         tokenendpoint.Printable(r.VerificationURI, 2048),
		VerificationURIComplete: tokenendpoint.Printable(r.VerificationURIComplete, 2048),
		ExpiresIn:               expiresIn,
		Interval:                min(interval, maxDeviceInterval),
	}
	return dc, r.DeviceCode, nil
}

// seconds reads a JSON number of seconds (a string of digits is accepted
// too); empty is 0. Values are bounded to 100 years.
func seconds(n json.Number) (time.Duration, bool) {
	if n == "" {
		return 0, true
	}
	f, err := n.Float64()
	if err != nil || f < 0 {
		return 0, false
	}
	const maxSeconds = 100 * 365 * 24 * 3600
	return time.Duration(min(f, maxSeconds) * float64(time.Second)), true
}

// printDeviceCode writes the default instructions.
func printDeviceCode(w io.Writer, dc DeviceCode) {
	if dc.VerificationURIComplete != "" {
		fmt.Fprintf(w, "To log in, open this URL on any device:\n\n  %s\n\nand check that it shows the code %s\n(or open %s and enter the code).\n\n",
			dc.VerificationURIComplete, dc.UserCode, dc.VerificationURI)
		return
	}
	fmt.Fprintf(w, "To log in, open this URL on any device:\n\n  %s\n\nand enter the code %s\n\n", dc.VerificationURI, dc.UserCode)
}

// pollDeviceToken polls the token endpoint until the user approved or
// denied the request, the device code expired, or ctx ended.
func pollDeviceToken(ctx context.Context, hc *http.Client, prover *dpopProver, cfg DeviceLoginConfig, dc DeviceCode, secret string, start time.Time) (*oauth2.Token, error) {
	deadline := start.Add(dc.ExpiresIn)
	build := func() (*tokenendpoint.Request, error) {
		form := url.Values{"grant_type": {GrantTypeDeviceCode}, "device_code": {secret}}
		ar := &AuthRequest{ClientID: cfg.ClientID, TokenURL: cfg.TokenURL, Form: form, Header: http.Header{}, Now: cfg.Now()}
		if err := cfg.Auth.Apply(ar); err != nil {
			return nil, err
		}
		if !form.Has("client_id") && ar.Header.Get("Authorization") == "" {
			form.Set("client_id", cfg.ClientID)
		}
		return &tokenendpoint.Request{URL: cfg.TokenURL, Form: form, Header: ar.Header}, nil
	}
	interval := dc.Interval
	wait := interval
	failures := 0
	for {
		if err := cfg.Sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("oauthclient: device login: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("oauthclient: device login: %w", err)
		}
		if !cfg.Now().Before(deadline) {
			return nil, ErrDeviceCodeExpired
		}
		req, err := build()
		if err != nil {
			return nil, fmt.Errorf("oauthclient: device login: %w", err)
		}
		issued := cfg.Now()
		raw, err := postToken(ctx, hc, prover, req, build, cfg.Now)
		if err == nil {
			return handedOut(raw, issued, prover), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("oauthclient: device login: %w", ctx.Err())
		}
		err = tokenError(err)
		var te *TokenError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("oauthclient: device login: %w", err)
		}
		switch te.ErrorCode {
		case "authorization_pending":
			failures, wait = 0, interval
			continue
		case "slow_down":
			interval = min(interval+deviceSlowDownStep, maxDeviceInterval)
			failures, wait = 0, interval
			continue
		case "access_denied":
			return nil, &deviceError{sentinel: ErrDeviceAccessDenied, te: te}
		case "expired_token":
			return nil, &deviceError{sentinel: ErrDeviceCodeExpired, te: te}
		}
		if !te.Temporary() {
			return nil, fmt.Errorf("oauthclient: device login: %w", err)
		}
		// A network error or an overloaded server: wait longer before the
		// next poll, never shorter than the interval.
		failures++
		wait = min(interval<<min(failures, 10), max(maxDeviceBackoff, interval))
		if te.RetryAfter > wait {
			wait = min(te.RetryAfter, maxDeviceInterval)
		}
	}
}
