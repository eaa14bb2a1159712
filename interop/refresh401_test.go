package interop

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// TestRefreshTokenNoCacheSurvives401: a RefreshToken source without a cache
// rotates its refresh token twice, then the resource server rejects its
// current access token. The next request through ts.Client succeeds after
// one transparent retry; the refresh that heals it redeems the newest
// rotated refresh token (not the one the source was configured with), the
// provider detects no reuse, and the grant keeps working afterwards.
//
// The SDK's clock is frozen except where the test moves it, so every
// refresh is one the test asked for: two by expiry, one by the 401, one
// more by expiry at the end.
func TestRefreshTokenNoCacheSurvives401(t *testing.T) {
	p := startProvider(t, ProviderOptions{})
	rec := newTokenRecorder(t, p.TokenURL)
	rt := p.RefreshToken(t, p.App.ID, "patient/Patient.rs")
	clock := newFakeClock()
	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: rec.listen(t, "client"),
		ClientID: p.App.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: p.App.Secret},
		Grant:    oauthclient.RefreshToken{Token: rt},
		Now:      clock.Now,
	})
	raw := &lifecycleStatusCounter{base: lifecycleTransport(t)}
	client := ts.Client(&http.Client{Transport: raw})

	mustReadPatient(t, p, client) // first refresh: the login's refresh token
	clock.Advance(10 * time.Minute)
	mustReadPatient(t, p, client) // second refresh: the first rotated one
	if n := len(rec.exchanges()); n != 2 {
		t.Fatalf("%d token requests before the revocation, want 2:\n%s", n, formatExchanges(rec.exchanges()))
	}

	ctx, cancel := context.WithTimeout(context.Background(), lifecycleTimeout)
	defer cancel()
	rejected, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	if !p.RevokeToken(t, rejected.AccessToken) {
		t.Fatal("RevokeToken: token unknown to the server")
	}
	mustReadPatient(t, p, client) // 401, refresh, retried once: 200
	if n401, n200 := raw.count(http.StatusUnauthorized), raw.count(http.StatusOK); n401 != 1 || n200 != 3 {
		t.Errorf("raw resource responses: %d × 401, %d × 200; want 1, 3", n401, n200)
	}
	healed, err := ts.Token(ctx)
	if err != nil {
		t.Fatalf("Token after the 401: %v", err)
	}
	if healed.AccessToken == rejected.AccessToken {
		t.Error("the source still holds the rejected access token")
	}

	clock.Advance(10 * time.Minute)
	mustReadPatient(t, p, client) // the grant still works

	log := rec.exchanges()
	if len(log) != 4 {
		t.Fatalf("%d token requests, want 4:\n%s", len(log), formatExchanges(log))
	}
	// Each refresh redeems the refresh token the one before it was issued:
	// RT#1 (the login's) → RT#2 → RT#3 → RT#4 → RT#5.
	for i, ex := range log {
		if ex.Grant != "refresh_token" || ex.Status != http.StatusOK || ex.Sent != i+1 || ex.Issued != i+2 {
			t.Errorf("token request %d: %s; want refresh_token sent RT#%d → 200 issued RT#%d", i+1, ex, i+1, i+2)
		}
	}
	if rec.serialOf(rt) != 1 {
		t.Error("the first refresh did not redeem the configured refresh token")
	}
	if rec.serialOf(healed.RefreshToken) != 4 {
		t.Errorf("the token after the 401 carries RT#%d, want RT#4", rec.serialOf(healed.RefreshToken))
	}
	st := p.Stats(t)
	if st.RefreshTokenReuse != 0 || st.GrantsRevoked != 0 || st.TokenErrors != 0 {
		t.Errorf("reuse detections %d, grants revoked %d, token errors %d (%v); want 0",
			st.RefreshTokenReuse, st.GrantsRevoked, st.TokenErrors, st.TokenErrorsByCode)
	}
	if st.ResourceUnauthorized != 1 {
		t.Errorf("resource 401s %d, want 1", st.ResourceUnauthorized)
	}
	t.Logf("%d refresh grants (RT#1→RT#5), %d resource requests, %d × 401, %d reuse detections",
		st.TokenRequestsByGrant["refresh_token"], st.ResourceRequests, st.ResourceUnauthorized, st.RefreshTokenReuse)
}
