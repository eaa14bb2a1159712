package interop

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
)

// TestSDKRotatingRefreshTokenUnderLoad: 20 goroutines read the protected
// resource for three real lifetimes of a 4-second access token, through one
// TokenSource whose refresh token rotates on every use. Every new refresh
// token reaches OnTokenChange exactly once, and the provider's reuse
// detection (which revokes the grant) never fires.
func TestSDKRotatingRefreshTokenUnderLoad(t *testing.T) {
	p := startProvider(t, ProviderOptions{AccessTokenTTL: 4 * time.Second})
	rt := p.RefreshToken(t, p.App.ID, "patient/Patient.rs")
	p.ResetStats(t)

	var mu sync.Mutex
	delivered := map[string]int{} // refresh token fingerprint → OnTokenChange calls
	ts := newTokenSource(t, oauthclient.Config{
		TokenURL: p.TokenURL,
		ClientID: p.App.ID,
		Auth:     oauthclient.ClientSecretBasic{Secret: p.App.Secret},
		Grant:    oauthclient.RefreshToken{Token: rt},
		Cache:    tokencache.NewMemory(),
		OnTokenChange: func(tok *oauth2.Token) {
			mu.Lock()
			delivered[fingerprint(tok.RefreshToken)]++
			mu.Unlock()
		},
	})
	client := ts.Client(nil)
	deadline := time.Now().Add(12 * time.Second)
	var wg sync.WaitGroup
	var failures sync.Map
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				resp, _, err := readPatient(p, client)
				if err != nil {
					t.Errorf("%v", err)
					return
				}
				if resp.StatusCode != http.StatusOK {
					failures.Store(resp.StatusCode, true)
				}
				time.Sleep(25 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// A used token is refreshed ahead of expiry by a timer even without
	// traffic: stop the source before counting.
	ts.Close()
	failures.Range(func(k, _ any) bool {
		t.Errorf("a request got status %v", k)
		return true
	})
	st := p.Stats(t)
	refreshes := st.TokenRequestsByClient[p.App.ID]
	if refreshes < 3 {
		t.Errorf("refreshes over three lifetimes = %d, want ≥ 3", refreshes)
	}
	if st.RefreshTokenReuse != 0 || st.GrantsRevoked != 0 || st.TokenErrors != 0 {
		t.Errorf("reuse detections %d, grants revoked %d, token errors %d; want 0", st.RefreshTokenReuse, st.GrantsRevoked, st.TokenErrors)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != refreshes {
		t.Errorf("OnTokenChange saw %d distinct refresh tokens for %d refreshes", len(delivered), refreshes)
	}
	for fp, n := range delivered {
		if n != 1 {
			t.Errorf("refresh token %s delivered %d times", fp, n)
		}
	}
	t.Logf("%d refreshes over 12 s of 20-way traffic, no reuse", refreshes)
}
