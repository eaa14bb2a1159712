package oauthclient

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
	"github.com/oauthkit/oauthkit/tokencache"
)

// request calls the token endpoint, retrying temporary failures with
// backoff. Every attempt builds a new form, so assertions are never reused.
func (s *TokenSource) request(ctx context.Context, c *call, prev *tokencache.Entry) (*tokenendpoint.Token, error) {
	s.mu.Lock()
	fails := s.fails
	s.mu.Unlock()
	b := s.retry.newBackOff(s.retry.cooldown(fails + 1))
	for attempt := 1; ; attempt++ {
		r, err := s.buildRequest(ctx, prev)
		if err != nil {
			return nil, err
		}
		s.log.Debug("oauthclient: token request", "token_url", s.cfg.TokenURL, "grant", r.Form.Get("grant_type"), "attempt", attempt)
		tok, err := tokenendpoint.Do(ctx, s.hc, r, s.cfg.Now)
		if err == nil {
			return tok, nil
		}
		err = s.classify(err)
		if !retryable(err) || attempt >= s.retry.MaxAttempts {
			return nil, err
		}
		wait := b.NextBackOff()
		if wait == backoff.Stop {
			return nil, err
		}
		var te *TokenError
		if errors.As(err, &te) && te.RetryAfter > 0 {
			if te.RetryAfter > s.retry.MaxRetryAfter {
				return nil, err
			}
			if te.RetryAfter > wait {
				wait = te.RetryAfter
			}
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, err
		}
		s.log.Debug("oauthclient: token request failed; retrying", "status", te.StatusCode, "error", te.ErrorCode, "wait", wait)
		if berr := s.backoff(ctx, c, wait, err); berr != nil {
			if errors.Is(berr, errAbandoned) {
				return nil, berr
			}
			return nil, err
		}
	}
}

func (s *TokenSource) buildRequest(ctx context.Context, prev *tokencache.Entry) (*tokenendpoint.Request, error) {
	now := s.cfg.Now()
	form, err := s.cfg.Grant.Form(ctx, &GrantRequest{ClientID: s.cfg.ClientID, TokenURL: s.cfg.TokenURL, Scopes: s.cfg.Scopes, Now: now, Previous: prev})
	if err != nil {
		return nil, err
	}
	if len(s.cfg.Scopes) > 0 && !form.Has("scope") {
		form.Set("scope", strings.Join(s.cfg.Scopes, " "))
	}
	for k, vs := range s.cfg.EndpointParams {
		if !form.Has(k) {
			form[k] = vs
		}
	}
	ar := &AuthRequest{ClientID: s.cfg.ClientID, TokenURL: s.cfg.TokenURL, Form: form, Header: http.Header{}, Now: now}
	if err := s.cfg.Auth.Apply(ar); err != nil {
		return nil, err
	}
	return &tokenendpoint.Request{URL: s.cfg.TokenURL, Form: form, Header: ar.Header}, nil
}

// classify marks a rejected refresh token as ErrReauthRequired.
func (s *TokenSource) classify(err error) error {
	var te *TokenError
	if _, ok := s.cfg.Grant.(RefreshToken); ok && errors.As(err, &te) && te.ErrorCode == "invalid_grant" {
		return &reauthError{te: te}
	}
	return err
}

// newEntry turns a token response into a cache entry, keeping the previous
// refresh token when a refresh returned none.
func (s *TokenSource) newEntry(raw *tokenendpoint.Token, prev *tokencache.Entry, issued time.Time) *tokencache.Entry {
	e := entryFromResponse(raw, issued)
	if _, ok := s.cfg.Grant.(RefreshToken); ok && e.RefreshToken == "" && prev != nil {
		e.RefreshToken = prev.RefreshToken
	}
	return e
}

// entryFromResponse turns a token response into a cache entry. The expiry
// counts from issued, when the request was sent, so transit time is on the
// safe side.
func entryFromResponse(raw *tokenendpoint.Token, issued time.Time) *tokencache.Entry {
	e := &tokencache.Entry{AccessToken: raw.AccessToken, TokenType: raw.TokenType, RefreshToken: raw.RefreshToken, Scope: raw.Scope, Updated: issued}
	switch {
	case raw.HasExpiresIn:
		e.Expiry = issued.Add(time.Duration(raw.ExpiresIn) * time.Second)
	default:
		e.Expiry = jwtExpiry(raw.AccessToken)
	}
	if len(raw.Extra) > 0 || raw.IDToken != "" || raw.IssuedTokenType != "" {
		e.Extra = make(map[string]any, len(raw.Extra)+2)
		for k, v := range raw.Extra {
			e.Extra[k] = v
		}
		if raw.IDToken != "" {
			e.Extra["id_token"] = raw.IDToken
		}
		if raw.IssuedTokenType != "" {
			e.Extra["issued_token_type"] = raw.IssuedTokenType
		}
	}
	return e
}

// tokenFromEntry is the *oauth2.Token for a cache entry: token type
// normalised to "Bearer", scope and the extra members in Extra.
func tokenFromEntry(e *tokencache.Entry) *oauth2.Token {
	typ := "Bearer"
	if e.TokenType != "" && !strings.EqualFold(e.TokenType, "bearer") {
		typ = e.TokenType
	}
	tok := &oauth2.Token{AccessToken: e.AccessToken, TokenType: typ, RefreshToken: e.RefreshToken, Expiry: e.Expiry}
	if len(e.Extra) == 0 && e.Scope == "" {
		return tok
	}
	extra := make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		extra[k] = v
	}
	if e.Scope != "" {
		extra["scope"] = e.Scope
	}
	return tok.WithExtra(extra)
}

// newState computes the header and the refresh and expiry instants.
func (s *TokenSource) newState(e *tokencache.Entry) *tokenState {
	tok := tokenFromEntry(e)
	st := &tokenState{entry: e, tok: tok, header: []string{"Bearer " + e.AccessToken}}
	if !e.Expiry.IsZero() {
		lifetime := e.Expiry.Sub(e.Updated)
		if e.Updated.IsZero() || lifetime <= 0 {
			lifetime = e.Expiry.Sub(s.cfg.Now())
		}
		if lifetime < 0 {
			lifetime = 0
		}
		st.expireAt = e.Expiry.Add(-s.leeway(lifetime))
		window := time.Duration(float64(lifetime) * s.cfg.RefreshWindow)
		if window > s.cfg.MaxRefreshWindow {
			window = s.cfg.MaxRefreshWindow
		}
		st.refreshAt = st.expireAt.Add(-window)
	}
	return st
}

// leeway is how long before expiry a token of the given lifetime stops
// being used.
func (s *TokenSource) leeway(lifetime time.Duration) time.Duration {
	l := s.cfg.ExpiryLeeway
	if l == 0 {
		l = lifetime / 10
		if l < time.Second {
			l = time.Second
		}
		if l > 10*time.Second {
			l = 10 * time.Second
		}
	}
	if l > lifetime/2 {
		l = lifetime / 2
	}
	return l
}

// jwtExpiry reads the exp claim of an access token that is a JWT. It is
// used only when the server sent no expires_in; the token is not verified
// and nothing else is read from it. Zero when absent.
func jwtExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[1]) > 8<<10 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 || f > 1e11 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0)
}
