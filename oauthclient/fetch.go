package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// errAbandoned ends a fetch whose callers have all gone while it waited to
// retry; nothing was sent after they left.
var errAbandoned = errors.New("oauthclient: fetch abandoned by all callers")

// abandonedRetry is errAbandoned for a fetch whose callers left while it
// waited to retry a failed request: the source keeps the failure and the
// wait (a cool-down), so that the next caller does not send at once and
// callers with short deadlines cannot outpace the backoff schedule.
type abandonedRetry struct {
	last  error     // the failure that was to be retried
	until time.Time // when the retry would have been sent
}

func (e *abandonedRetry) Error() string        { return errAbandoned.Error() }
func (e *abandonedRetry) Is(target error) bool { return target == errAbandoned }

// fetcher makes one token request, with retries of temporary failures on
// the source's backoff schedule. It knows nothing of the token states or
// the cache: it is told what refresh token to use, when nobody waits any
// more (a channel), and what to check right before sending.
type fetcher struct {
	cfg   *Config
	hc    *http.Client
	sched *schedule
	log   *slog.Logger
	obs   Observer
	// dpop signs DPoP proofs (nil: no DPoP); made by NewTokenSource.
	dpop *dpopProver
}

// fetchRequest is what one fetch needs from its caller.
type fetchRequest struct {
	// prev is the newest entry known (its refresh token is the one to
	// redeem); nil if none.
	prev *tokencache.Entry
	// gone is closed when no caller waits any more; a retry backoff then
	// ends with errAbandoned. Nil for background refreshes.
	gone <-chan struct{}
	// hold, if set, is called right before each attempt that sends a
	// refresh token; an error means the attempt must not be sent.
	hold func(context.Context) error
}

// fetch sends token requests until one succeeds, a permanent error, the
// attempt or time budget is spent, ctx ends or every caller has gone. It
// returns the response and when its request was sent. Every attempt builds
// a new form, so assertions are never reused.
func (f *fetcher) fetch(ctx context.Context, r fetchRequest) (*tokenendpoint.Token, time.Time, error) {
	pol := f.sched.pol
	start := f.cfg.Now()
	for attempt := 1; ; attempt++ {
		req, err := f.build(ctx, r.prev)
		if err != nil {
			return nil, time.Time{}, err
		}
		if err := f.checkBinding(r.prev, req); err != nil {
			return nil, time.Time{}, err
		}
		if r.hold != nil && req.Form.Has("refresh_token") {
			if err := r.hold(ctx); err != nil {
				return nil, time.Time{}, err
			}
		}
		f.log.Debug("oauthclient: token request", "token_url", redactURL(f.cfg.TokenURL), "grant", req.Form.Get("grant_type"), "attempt", attempt)
		issued := f.cfg.Now()
		tok, err := postToken(ctx, f.hc, f.prover(), req, func() (*tokenendpoint.Request, error) { return f.build(ctx, r.prev) }, f.cfg.Now)
		if err == nil {
			f.report(ctx, req, attempt, issued, nil)
			return tok, issued, nil
		}
		err = f.classify(tokenError(err))
		f.report(ctx, req, attempt, issued, err)
		if !retryable(err) || attempt >= pol.MaxAttempts || f.cfg.Now().Sub(start) >= pol.MaxElapsed {
			return nil, time.Time{}, err
		}
		wait := f.sched.next(retryAfterOf(err))
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, time.Time{}, err
		}
		f.log.Debug("oauthclient: token request failed; retrying", "err", err, "wait", wait)
		if werr := sleep(ctx, wait, r.gone); werr != nil {
			if errors.Is(werr, errAbandoned) {
				return nil, time.Time{}, &abandonedRetry{last: err, until: f.cfg.Now().Add(wait)}
			}
			return nil, time.Time{}, err
		}
	}
}

// report tells the observer about one token request.
func (f *fetcher) report(ctx context.Context, req *tokenendpoint.Request, attempt int, start time.Time, err error) {
	if _, none := f.obs.(noObserver); none {
		return
	}
	e := TokenRequestEvent{Grant: req.Form.Get("grant_type"), TokenURL: redactURL(f.cfg.TokenURL), ClientID: f.cfg.ClientID,
		Attempt: attempt, Start: start, Duration: f.cfg.Now().Sub(start), Outcome: RequestOK, StatusCode: http.StatusOK}
	if err != nil {
		e.Outcome, e.StatusCode = RequestPermanent, 0
		if retryable(err) {
			e.Outcome = RequestTemporary
		}
		var te *TokenError
		if errors.As(err, &te) {
			e.StatusCode, e.ErrorCode = te.StatusCode, te.ErrorCode
		}
	}
	f.obs.TokenRequest(ctx, e)
}

// sleep waits d, or until ctx is done or gone is closed.
func sleep(ctx context.Context, d time.Duration, gone <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-gone:
		return errAbandoned
	}
}

// build makes one token request: the grant's form, scopes, endpoint
// parameters, then client authentication.
func (f *fetcher) build(ctx context.Context, prev *tokencache.Entry) (*tokenendpoint.Request, error) {
	c := f.cfg
	now := c.Now()
	form, err := c.Grant.Form(ctx, &GrantRequest{ClientID: c.ClientID, TokenURL: c.TokenURL, Scopes: c.Scopes, Now: now, Previous: prev})
	if err != nil {
		return nil, err
	}
	if len(c.Scopes) > 0 && !form.Has("scope") {
		form.Set("scope", strings.Join(c.Scopes, " "))
	}
	for k, vs := range c.EndpointParams {
		if !form.Has(k) {
			form[k] = vs
		}
	}
	ar := &AuthRequest{ClientID: c.ClientID, TokenURL: c.TokenURL, Form: form, Header: http.Header{}, Now: now}
	if err := c.Auth.Apply(ar); err != nil {
		return nil, err
	}
	return &tokenendpoint.Request{URL: c.TokenURL, Form: form, Header: ar.Header}, nil
}

// classify marks a rejected refresh token as ErrReauthRequired.
func (f *fetcher) classify(err error) error {
	var te *TokenError
	if _, ok := f.cfg.Grant.(refreshGrant); ok && errors.As(err, &te) && te.ErrorCode == "invalid_grant" {
		return &reauthError{te: te}
	}
	return err
}

// postToken sends one token request, req, with a DPoP proof when p is set.
// An answer use_dpop_nonce that carries a new DPoP-Nonce is retried once,
// with the nonce, on a request made anew by rebuild (a fresh client
// assertion: servers refuse a replayed jti). Every DPoP-Nonce the token
// endpoint sends is remembered. A DPoP-bound token without p is refused
// with ErrDPoPNotConfigured. Errors are the internal token-endpoint
// errors, for the caller to convert. A Bearer token issued to a DPoP request is
// accepted as a bearer token (RFC 9449 §5 leaves that to the client).
func postToken(ctx context.Context, hc *http.Client, p *dpopProver, req *tokenendpoint.Request, rebuild func() (*tokenendpoint.Request, error), now func() time.Time) (*tokenendpoint.Token, error) {
	for try := 0; ; try++ {
		var scope, sent string
		if p != nil {
			u, err := url.Parse(req.URL)
			if err != nil {
				return nil, fmt.Errorf("oauthclient: token URL: %w", tokenendpoint.RedactURLError(err))
			}
			scope = nonceScope(u, true)
			sent = p.nonce(scope)
			proof, err := p.proof(http.MethodPost, u, "", sent, now())
			if err != nil {
				return nil, err
			}
			if req.Header == nil {
				req.Header = http.Header{}
			}
			req.Header.Set("DPoP", proof)
		}
		resp, err := tokenendpoint.Post(ctx, hc, req)
		if err != nil {
			return nil, err
		}
		fresh := p != nil && p.remember(scope, resp.Header) && p.nonce(scope) != sent
		tok, err := resp.Parse(now())
		var te *tokenendpoint.Error
		if errors.As(err, &te) {
			if te.ErrorCode == "use_dpop_nonce" && fresh && try == 0 && rebuild != nil {
				if req, err = rebuild(); err != nil {
					return nil, err
				}
				continue
			}
		}
		if err != nil {
			return nil, err
		}
		if isDPoPType(tok.TokenType) && p == nil {
			return nil, &tokenendpoint.Error{StatusCode: resp.StatusCode, Err: ErrDPoPNotConfigured}
		}
		return tok, nil
	}
}
