package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// FromOAuth2 adapts a golang.org/x/oauth2 TokenSource to Source, so that
// code built on x/oauth2 (Google's credentials, an oauth2.Config's
// TokenSource, a ReuseTokenSource) can feed a Transport. The adapter
// honours ctx as far as an oauth2.TokenSource allows: a caller whose ctx
// ends gets ctx.Err() at once, while the underlying Token call, which takes
// no context, finishes in the background. The adapter does not refresh or
// cache on its own; ts decides that (wrap it with oauth2.ReuseTokenSource
// to reuse tokens). The source of TokenSource.OAuth2 is unwrapped, not
// adapted twice.
//
// The adapter is safe for concurrent use if ts is. It prints as
// "oauthclient.FromOAuth2{…}" with every fmt verb and in slog output,
// never with ts's fields (an oauth2 token source may hold a token).
func FromOAuth2(ts oauth2.TokenSource) Source {
	if o, ok := ts.(oauth2Source); ok {
		return o.s
	}
	return &oauth2Adapter{ts: ts}
}

// oauth2Adapter is the Source of FromOAuth2.
type oauth2Adapter struct{ ts oauth2.TokenSource }

// tokenResult is the outcome of one oauth2.TokenSource.Token call.
type tokenResult struct {
	tok *oauth2.Token
	err error
}

// Token implements Source.
func (a *oauth2Adapter) Token(ctx context.Context) (*oauth2.Token, error) {
	if a.ts == nil {
		return nil, errors.New("oauthclient: FromOAuth2: nil oauth2.TokenSource")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ctx.Done() == nil {
		// A context that cannot end (context.Background, the context of
		// http.NewRequest): nothing to return early for, so no goroutine.
		tok, err := a.ts.Token()
		return adapted(tokenResult{tok, err})
	}
	done := make(chan tokenResult, 1) // buffered: a late result is dropped
	go func() {
		tok, err := a.ts.Token()
		done <- tokenResult{tok, err}
	}()
	select {
	case r := <-done:
		return adapted(r)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// adapted checks the result of an oauth2.TokenSource.Token call.
func adapted(r tokenResult) (*oauth2.Token, error) {
	if r.err != nil {
		return nil, fmt.Errorf("oauthclient: oauth2 token source: %w", adaptedError(r.err))
	}
	if r.tok == nil || r.tok.AccessToken == "" {
		return nil, errors.New("oauthclient: oauth2 token source returned no access token")
	}
	return r.tok, nil
}

// String describes the adapter without the adapted source's fields.
func (a *oauth2Adapter) String() string { return "oauthclient.FromOAuth2{…}" }

// GoString is like String.
func (a *oauth2Adapter) GoString() string { return a.String() }

// Format prints String for every fmt verb.
func (a *oauth2Adapter) Format(f fmt.State, _ rune) { fmt.Fprint(f, a.String()) }

// LogValue prints String in slog output.
func (a *oauth2Adapter) LogValue() slog.Value { return slog.StringValue(a.String()) }

// authFromStyle maps an x/oauth2 AuthStyle and client secret to a
// ClientAuth: no secret is a public client (NoClientAuth); AuthStyleInParams
// is ClientSecretPost; AuthStyleInHeader and AuthStyleAutoDetect are
// ClientSecretBasic (auto-detection would send the secret twice, once per
// style, so the header, which RFC 6749 §2.3.1 requires servers to support,
// is chosen).
func authFromStyle(style oauth2.AuthStyle, secret string) ClientAuth {
	switch {
	case secret == "":
		return NoClientAuth{}
	case style == oauth2.AuthStyleInParams:
		return ClientSecretPost{Secret: secret}
	default:
		return ClientSecretBasic{Secret: secret}
	}
}

// NewFromClientCredentials returns a TokenSource for the client credentials
// grant configured by an x/oauth2 clientcredentials.Config: TokenURL,
// ClientID, Scopes and EndpointParams carry over, and AuthStyle selects
// ClientSecretPost (AuthStyleInParams) or ClientSecretBasic (the others).
// Unlike clientcredentials' source, the TokenSource refreshes ahead of
// expiry, retries temporary failures and shares one fetch between callers;
// for a persistent cache or other options, fill in a Config from the same
// fields instead. EndpointParams must not carry credentials (see
// Config.EndpointParams).
func NewFromClientCredentials(cfg *clientcredentials.Config) (*TokenSource, error) {
	if cfg == nil {
		return nil, errors.New("oauthclient: NewFromClientCredentials: nil config")
	}
	return NewTokenSource(Config{
		TokenURL:       cfg.TokenURL,
		ClientID:       cfg.ClientID,
		Auth:           authFromStyle(cfg.AuthStyle, cfg.ClientSecret),
		Grant:          ClientCredentials{},
		Scopes:         cfg.Scopes,
		EndpointParams: cfg.EndpointParams,
	})
}

// NewFromOAuth2Config returns a TokenSource that keeps tok fresh with the
// refresh token grant, configured by an x/oauth2 oauth2.Config (as after
// its Exchange): Endpoint.TokenURL, ClientID, Scopes, and
// Endpoint.AuthStyle mapped to ClientSecretPost (AuthStyleInParams) or
// ClientSecretBasic (the others; NoClientAuth without a secret). tok is
// the current token; its refresh token is the initial one, and a rotated
// one replaces it. cacheKey is Config.CacheKey: empty derives one from the
// refresh token (a one-way digest), so two users never share an entry.
func NewFromOAuth2Config(cfg *oauth2.Config, tok *oauth2.Token, cacheKey string) (*TokenSource, error) {
	if cfg == nil {
		return nil, errors.New("oauthclient: NewFromOAuth2Config: nil config")
	}
	if tok == nil || tok.AccessToken == "" && tok.RefreshToken == "" {
		return nil, errors.New("oauthclient: NewFromOAuth2Config: no token")
	}
	ts, err := NewTokenSource(Config{
		TokenURL: cfg.Endpoint.TokenURL,
		ClientID: cfg.ClientID,
		Auth:     authFromStyle(cfg.Endpoint.AuthStyle, cfg.ClientSecret),
		Grant:    RefreshToken{Token: tok.RefreshToken},
		Scopes:   cfg.Scopes,
		CacheKey: cacheKey,
	})
	if err != nil {
		return nil, err
	}
	if err := ts.Seed(context.Background(), tok); err != nil {
		ts.Close()
		return nil, err
	}
	return ts, nil
}

// adaptedError turns an error of golang.org/x/oauth2 into one that cannot
// hold a credential: its *oauth2.RetrieveError quotes the token endpoint's
// whole answer, which may echo the request (the client secret, a refresh
// token), so only the status and a registered error code are kept; URLs
// lose their query. Context and network errors keep their text; any other
// error (another library's, which may quote a server's answer too) only
// its type.
func adaptedError(err error) error {
	var re *oauth2.RetrieveError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &re):
	case errors.As(err, new(*url.Error)), errors.As(err, &ne):
		return RedactURLError(err)
	default:
		return &withheldError{err: err}
	}
	te := &TokenError{}
	if re.Response != nil {
		te.StatusCode = re.Response.StatusCode
	}
	if tokenendpoint.RegisteredErrorCode(re.ErrorCode) {
		te.ErrorCode = re.ErrorCode
	} else {
		te.Err = ErrMalformedResponse
	}
	return te
}

// withheldError stands for an error whose text may quote a server's answer:
// it prints only the error's type. errors.Is still sees the error's chain;
// it has no Unwrap, so that nothing prints the text by unwrapping it.
type withheldError struct{ err error }

func (e *withheldError) Error() string {
	return fmt.Sprintf("%T (text withheld: it may quote the token endpoint's answer)", e.err)
}

func (e *withheldError) Is(target error) bool { return errors.Is(e.err, target) }
