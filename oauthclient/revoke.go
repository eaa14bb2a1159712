package oauthclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthkit/oauthkit/internal/tokenendpoint"
)

// Revoke revokes the source's refresh token, else its access token, at
// Config.RevocationURL (RFC 7009), authenticating as at the token endpoint,
// then forgets the token in memory and deletes it from the cache. A token
// the server does not know counts as revoked (RFC 7009 §2.2).
func (s *TokenSource) Revoke(ctx context.Context) error {
	if s.cfg.RevocationURL == "" {
		return ErrNoRevocationEndpoint
	}
	e := s.tier.current(ctx)
	// The token to revoke: one with a refresh token, else the newer.
	if st := s.cur.Load(); st != nil && (e == nil || e.RefreshToken == "" && (st.entry.RefreshToken != "" || st.entry.Updated.After(e.Updated))) {
		e = st.entry
	}
	if e == nil || e.AccessToken == "" && e.RefreshToken == "" {
		return nil
	}
	form := url.Values{}
	if e.RefreshToken != "" {
		form.Set("token", e.RefreshToken)
		form.Set("token_type_hint", "refresh_token")
	} else {
		form.Set("token", e.AccessToken)
		form.Set("token_type_hint", "access_token")
	}
	ar := &AuthRequest{ClientID: s.cfg.ClientID, TokenURL: s.cfg.TokenURL, Form: form, Header: http.Header{}, Now: s.cfg.Now()}
	if err := s.cfg.Auth.Apply(ar); err != nil {
		return err
	}
	resp, err := tokenendpoint.Post(ctx, s.hc, &tokenendpoint.Request{URL: s.cfg.RevocationURL, Form: form, Header: ar.Header})
	if err != nil {
		return revokeFailed(err)
	}
	if resp.StatusCode/100 != 2 { // RFC 7009 says 200; some servers answer 204
		// Parse turns the RFC 7009 §2.2.1 error response into a *TokenError.
		_, err := resp.Parse(s.cfg.Now())
		return revokeFailed(err)
	}
	s.mu.Lock()
	s.publish(nil)
	s.mu.Unlock()
	if err := s.tier.forget(ctx); err != nil {
		return fmt.Errorf("oauthclient: revoke: token revoked but not deleted from cache: %w", err)
	}
	s.log.Debug("oauthclient: token revoked")
	return nil
}

// revokeFailed wraps the error of a revocation request: "oauthclient:
// revoke: " and the endpoint's answer, without a second package prefix or
// the words "token endpoint" of the error type it shares with the token
// endpoint. errors.As still finds the *TokenError.
func revokeFailed(err error) error {
	err = tokenError(err)
	if te, ok := err.(*TokenError); ok {
		return &revokeError{te: te}
	}
	return fmt.Errorf("oauthclient: revoke: %w", err)
}

// revokeError is a *TokenError of the revocation endpoint.
type revokeError struct{ te *TokenError }

func (e *revokeError) Error() string {
	return "oauthclient: revoke: " + strings.TrimPrefix(e.te.detail(), "token endpoint: ")
}

func (e *revokeError) Unwrap() error { return e.te }
