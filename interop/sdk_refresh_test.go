package interop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
)

// TestSDKRefreshTokenRotation refreshes through rotated refresh tokens. The
// provider rotates on every use and revokes the grant when a consumed token
// comes back, so any reuse by the SDK shows up as a reuse detection.
func TestSDKRefreshTokenRotation(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	tests := []struct {
		name   string
		client Client
		auth   oauthclient.ClientAuth
	}{
		{"confidential", p.App, oauthclient.ClientSecretBasic{Secret: p.App.Secret}},
		{"public", p.Public, oauthclient.NoClientAuth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt := p.RefreshToken(t, tt.client.ID, "patient/Patient.rs")
			clock := newFakeClock()
			var changes atomic.Int32
			ts := newTokenSource(t, oauthclient.Config{
				TokenURL:      p.TokenURL,
				ClientID:      tt.client.ID,
				Auth:          tt.auth,
				Grant:         oauthclient.RefreshToken{Token: rt},
				Now:           clock.Now,
				OnTokenChange: func(*oauth2.Token) { changes.Add(1) },
			})
			client := ts.Client(nil)
			mustReadPatient(t, p, client)

			// The SDK's clock passes the access token's expiry three times;
			// each time, many goroutines need a token at once.
			for round := 0; round < 3; round++ {
				clock.Advance(10 * time.Minute)
				var wg sync.WaitGroup
				for i := 0; i < 8; i++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						resp, _, err := readPatient(p, client)
						if err != nil {
							t.Errorf("round %d: %v", round, err)
							return
						}
						if resp.StatusCode != http.StatusOK {
							t.Errorf("round %d: GET /fhir/Patient: status %d", round, resp.StatusCode)
						}
					}()
				}
				wg.Wait()
			}

			st := p.Stats(t)
			if got := st.TokenRequestsByClient[tt.client.ID]; got != 1+4 { // authorization code + 4 refreshes
				t.Errorf("token requests = %d, want 5", got)
			}
			if st.RefreshTokenReuse != 0 || st.GrantsRevoked != 0 || st.TokenErrors != 0 {
				t.Errorf("reuse detections %d, grants revoked %d, token errors %d (%v); want 0", st.RefreshTokenReuse, st.GrantsRevoked, st.TokenErrors, st.TokenErrorsByCode)
			}
			if got := changes.Load(); got != 4 {
				t.Errorf("OnTokenChange calls = %d, want 4", got)
			}
			p.ResetStats(t)
		})
	}
}

// TestSDKRefreshTokenSharedCache: two TokenSources (two processes of a
// fleet) share a file cache; the second must redeem the rotated refresh
// token the first persisted, never the stale one it was configured with.
func TestSDKRefreshTokenSharedCache(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	rt := p.RefreshToken(t, p.App.ID)
	dir := t.TempDir()
	newSource := func(clock *fakeClock) *oauthclient.TokenSource {
		cache, err := tokencache.NewFile(dir)
		if err != nil {
			t.Fatalf("NewFile: %v", err)
		}
		return newTokenSource(t, oauthclient.Config{
			TokenURL: p.TokenURL,
			ClientID: p.App.ID,
			Auth:     oauthclient.ClientSecretBasic{Secret: p.App.Secret},
			Grant:    oauthclient.RefreshToken{Token: rt},
			Cache:    cache,
			Now:      clock.Now,
		})
	}
	first := newSource(newFakeClock())
	mustReadPatient(t, p, first.Client(nil))

	later := newFakeClock()
	later.Advance(10 * time.Minute)
	second := newSource(later)
	mustReadPatient(t, p, second.Client(nil))

	st := p.Stats(t)
	if st.TokenRequestsByGrant["refresh_token"] != 2 || st.RefreshTokenReuse != 0 || st.TokenErrors != 0 {
		t.Errorf("refreshes %d, reuse detections %d, token errors %d (%v); want 2, 0, 0",
			st.TokenRequestsByGrant["refresh_token"], st.RefreshTokenReuse, st.TokenErrors, st.TokenErrorsByCode)
	}
}

// TestSDKRefreshTokenReuseNeedsLogin: a refresh token that was already
// redeemed elsewhere is rejected (and the provider revokes the grant); the
// SDK reports ErrReauthRequired without leaking the token.
func TestSDKRefreshTokenReuseNeedsLogin(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	rt := p.RefreshToken(t, p.App.ID)
	if _, err := p.postToken(context.Background(), p.App, map[string][]string{
		"grant_type": {"refresh_token"}, "refresh_token": {rt},
	}); err != nil {
		t.Fatalf("out-of-band refresh: %v", err)
	}
	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.App.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: p.App.Secret},
		Grant:    oauthclient.RefreshToken{Token: rt},
	})
	_, err := ts.Token(context.Background())
	assertNoSecret(t, err, rt, p.App.Secret)
	if !errors.Is(err, oauthclient.ErrReauthRequired) {
		t.Fatalf("Token: %v, want ErrReauthRequired", err)
	}
	var te *oauthclient.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Errorf("Token: %v, want a TokenError with invalid_grant", err)
	}
	if st := p.Stats(t); st.RefreshTokenReuse != 1 || st.GrantsRevoked != 1 {
		t.Errorf("reuse detections %d, grants revoked %d; want 1, 1", st.RefreshTokenReuse, st.GrantsRevoked)
	}
}

// TestSDKLogin runs oauthclient.Login against the provider: its loopback
// redirect URI on a random port must match the registered
// http://127.0.0.1/callback (RFC 8252 §7.3), PKCE must verify, and the
// refresh token it returns must work with a RefreshToken TokenSource.
func TestSDKLogin(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var opened atomic.Bool
	browserDone := make(chan error, 1)
	tok, err := oauthclient.Login(ctx, oauthclient.LoginConfig{
		AuthURL:  p.AuthorizationURL,
		TokenURL: p.TokenURL,
		ClientID: p.Public.ID,
		Scopes:   []string{"patient/Patient.rs"},
		Out:      io.Discard,
		OpenBrowser: func(authURL string) error {
			opened.Store(true)
			go func() {
				loc, err := p.Approve(authURL)
				if err != nil {
					browserDone <- err
					return
				}
				resp, err := http.Get(loc.String()) // deliver the code to Login's listener
				if err != nil {
					// The URL holds the code and state: keep it out of the error.
					browserDone <- fmt.Errorf("deliver the code to the callback: %w", withoutURL(err))
					return
				}
				browserDone <- drain(resp)
			}()
			return nil
		},
	})
	if opened.Load() {
		select {
		case berr := <-browserDone:
			if berr != nil {
				t.Fatalf("browser: %v", berr)
			}
		case <-ctx.Done():
			t.Fatalf("browser: %v", ctx.Err())
		}
	}
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("Login: access token %s, refresh token %s", fingerprint(tok.AccessToken), fingerprint(tok.RefreshToken))
	}

	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.Public.ID,
		Grant:    oauthclient.RefreshToken{},
		Cache:    tokencache.NewMemory(),
		CacheKey: "interop-login-user",
	})
	if err := ts.Seed(ctx, tok); err != nil {
		t.Fatalf("Seed: %v", err)
	}
	mustReadPatient(t, p, ts.Client(nil))
	if st := p.Stats(t); st.TokenRequestsByGrant["authorization_code"] != 1 || st.TokenErrors != 0 {
		t.Errorf("token requests by grant %v, errors %d", st.TokenRequestsByGrant, st.TokenErrors)
	}
}
