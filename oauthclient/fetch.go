package oauthclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// errAbandoned ends a fetch whose callers have all gone while it waited to
// retry; nothing was sent after they left.
var errAbandoned = errors.New("oauthclient: fetch abandoned by all callers")

// fetcher makes one token request, with retries of temporary failures on
// the source's backoff schedule. It knows nothing of the token states or
// the cache: it is told what refresh token to use, when nobody waits any
// more (a channel), and what to check right before sending.
type fetcher struct {
	cfg   *Config
	hc    *http.Client
	sched *schedule
	log   *slog.Logger
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
		if r.hold != nil && req.Form.Has("refresh_token") {
			if err := r.hold(ctx); err != nil {
				return nil, time.Time{}, err
			}
		}
		f.log.Debug("oauthclient: token request", "token_url", redactURL(f.cfg.TokenURL), "grant", req.Form.Get("grant_type"), "attempt", attempt)
		issued := f.cfg.Now()
		tok, err := tokenendpoint.Do(ctx, f.hc, req, f.cfg.Now)
		if err == nil {
			return tok, issued, nil
		}
		err = f.classify(err)
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
				return nil, time.Time{}, werr
			}
			return nil, time.Time{}, err
		}
	}
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
