package oauthclient_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// deviceClock is a fake clock for DeviceLogin: Sleep records the wait,
// advances Now and runs onSleep (with the number of the sleep, from 1)
// without waiting.
type deviceClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	onSleep func(n int)
}

func newDeviceClock() *deviceClock {
	return &deviceClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *deviceClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *deviceClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	n, f := len(c.sleeps), c.onSleep
	c.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

func (c *deviceClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// newDeviceServer starts an oauthtest server with a public device client "cli".
func newDeviceServer(t *testing.T) *oauthtest.Server {
	t.Helper()
	srv := oauthtest.NewServer()
	t.Cleanup(srv.Close)
	err := srv.RegisterClient(oauthtest.Client{ID: "cli", AuthMethod: oauthtest.AuthNone,
		GrantTypes: []string{oauthtest.GrantDeviceCode, oauthtest.GrantRefreshToken}})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// deviceConfig is a DeviceLoginConfig for srv's "cli" client on clock c;
// Prompt stores the user code in *userCode.
func deviceConfig(srv *oauthtest.Server, c *deviceClock, userCode *string) oauthclient.DeviceLoginConfig {
	return oauthclient.DeviceLoginConfig{
		DeviceAuthURL: srv.DeviceAuthorizationURL(),
		TokenURL:      srv.TokenURL(),
		ClientID:      "cli",
		Scopes:        []string{"user/Patient.rs", "offline_access"},
		Prompt: func(dc oauthclient.DeviceCode) error {
			*userCode = dc.UserCode
			return nil
		},
		Now:   c.Now,
		Sleep: c.Sleep,
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDeviceLoginApproveAndSeed(t *testing.T) {
	srv := newDeviceServer(t)
	ctx := context.Background()
	meta, err := oauthclient.DiscoverServer(ctx, srv.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if meta.DeviceAuthorizationEndpoint != srv.DeviceAuthorizationURL() {
		t.Fatalf("DeviceAuthorizationEndpoint = %q, want %q", meta.DeviceAuthorizationEndpoint, srv.DeviceAuthorizationURL())
	}
	clock := newDeviceClock()
	var userCode string
	var shown oauthclient.DeviceCode
	cfg := deviceConfig(srv, clock, &userCode)
	cfg.DeviceAuthURL, cfg.TokenURL = meta.DeviceAuthorizationEndpoint, meta.TokenEndpoint
	cfg.Prompt = func(dc oauthclient.DeviceCode) error {
		shown, userCode = dc, dc.UserCode
		return nil
	}
	clock.onSleep = func(n int) {
		if n == 3 {
			if err := srv.ApproveDevice(userCode, "alice"); err != nil {
				t.Error(err)
			}
		}
	}
	tok, err := oauthclient.DeviceLogin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token: access %v, refresh %v; want both", tok.AccessToken != "", tok.RefreshToken != "")
	}
	if got, want := clock.Sleeps(), []time.Duration{time.Second, time.Second, time.Second}; !equalDurations(got, want) {
		t.Errorf("waits before polls = %v, want %v", got, want)
	}
	if shown.VerificationURI != srv.DeviceVerificationURL() || !strings.Contains(shown.VerificationURIComplete, "user_code=") ||
		shown.Interval != time.Second || shown.ExpiresIn != 10*time.Minute {
		t.Errorf("DeviceCode = %+v", shown)
	}
	polls := 0
	for _, r := range srv.TokenRequestLog() {
		if r.GrantType == oauthtest.GrantDeviceCode {
			polls++
		}
	}
	if polls != 3 {
		t.Errorf("token endpoint saw %d device code polls, want 3", polls)
	}

	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(), ClientID: "cli", Grant: oauthclient.RefreshToken{},
		Cache: tokencache.NewMemory(), CacheKey: "cli/alice",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Seed(ctx, tok); err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Client(nil).Get(srv.FHIRBase() + "/Patient")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("resource status %d after seeding the device login's token", resp.StatusCode)
	}
}

func TestDeviceLoginSlowDownAddsFiveSeconds(t *testing.T) {
	srv := newDeviceServer(t)
	clock := newDeviceClock()
	var userCode string
	cfg := deviceConfig(srv, clock, &userCode)
	cfg.Prompt = func(dc oauthclient.DeviceCode) error {
		userCode = dc.UserCode
		if err := srv.SlowDownDevice(dc.UserCode, 2); err != nil {
			return err
		}
		return nil
	}
	clock.onSleep = func(n int) {
		if n == 4 {
			if err := srv.ApproveDevice(userCode, "alice"); err != nil {
				t.Error(err)
			}
		}
	}
	if _, err := oauthclient.DeviceLogin(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	// 1 s, slow_down → 6 s, slow_down → 11 s, kept after authorization_pending.
	want := []time.Duration{time.Second, 6 * time.Second, 11 * time.Second, 11 * time.Second}
	if got := clock.Sleeps(); !equalDurations(got, want) {
		t.Errorf("waits before polls = %v, want %v", got, want)
	}
}

func TestDeviceLoginDefaultInterval(t *testing.T) {
	srv := newDeviceServer(t)
	srv.SetDeviceInterval(0) // the answer names no interval
	clock := newDeviceClock()
	var userCode string
	cfg := deviceConfig(srv, clock, &userCode)
	clock.onSleep = func(int) { _ = srv.ApproveDevice(userCode, "alice") }
	if _, err := oauthclient.DeviceLogin(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got, want := clock.Sleeps(), []time.Duration{5 * time.Second}; !equalDurations(got, want) {
		t.Errorf("waits before polls = %v, want %v", got, want)
	}
}

func TestDeviceLoginDeniedAndExpired(t *testing.T) {
	tests := []struct {
		name     string
		decide   func(srv *oauthtest.Server, userCode string) error
		sentinel error
		code     string
	}{
		{"denied", func(s *oauthtest.Server, uc string) error { return s.DenyDevice(uc) }, oauthclient.ErrDeviceAccessDenied, "access_denied"},
		{"expired", func(s *oauthtest.Server, uc string) error { return s.ExpireDevice(uc) }, oauthclient.ErrDeviceCodeExpired, "expired_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDeviceServer(t)
			clock := newDeviceClock()
			var userCode string
			cfg := deviceConfig(srv, clock, &userCode)
			clock.onSleep = func(n int) {
				if n == 2 {
					if err := tt.decide(srv, userCode); err != nil {
						t.Error(err)
					}
				}
			}
			_, err := oauthclient.DeviceLogin(context.Background(), cfg)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("error %v, want %v", err, tt.sentinel)
			}
			var te *oauthclient.TokenError
			if !errors.As(err, &te) || te.ErrorCode != tt.code {
				t.Fatalf("error %v does not wrap a TokenError %s", err, tt.code)
			}
			if n := len(clock.Sleeps()); n != 2 {
				t.Errorf("polled %d times, want 2", n)
			}
		})
	}
}

func TestDeviceLoginExpiresByClientClock(t *testing.T) {
	srv := newDeviceServer(t)
	srv.SetDeviceCodeLifetime(3 * time.Second)
	clock := newDeviceClock()
	var userCode string
	cfg := deviceConfig(srv, clock, &userCode)
	_, err := oauthclient.DeviceLogin(context.Background(), cfg)
	if !errors.Is(err, oauthclient.ErrDeviceCodeExpired) {
		t.Fatalf("error %v, want ErrDeviceCodeExpired", err)
	}
	// Polls after 1 s and 2 s; at 3 s the code has expired: no third poll.
	if n := srv.Stats().ByGrant[oauthtest.GrantDeviceCode]; n != 2 {
		t.Errorf("token endpoint saw %d polls, want 2", n)
	}
}

func TestDeviceLoginHonoursContext(t *testing.T) {
	srv := newDeviceServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := oauthclient.DeviceLoginConfig{
		DeviceAuthURL: srv.DeviceAuthorizationURL(), TokenURL: srv.TokenURL(), ClientID: "cli",
		Prompt: func(oauthclient.DeviceCode) error { cancel(); return nil },
	}
	srv.SetDeviceInterval(time.Hour) // the real sleeper: only ctx can end the wait
	_, err := oauthclient.DeviceLogin(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if n := srv.Stats().ByGrant[oauthtest.GrantDeviceCode]; n != 0 {
		t.Errorf("token endpoint saw %d polls after the context ended", n)
	}
}

func TestDeviceLoginPromptError(t *testing.T) {
	srv := newDeviceServer(t)
	boom := errors.New("no terminal")
	cfg := oauthclient.DeviceLoginConfig{
		DeviceAuthURL: srv.DeviceAuthorizationURL(), TokenURL: srv.TokenURL(), ClientID: "cli",
		Prompt: func(oauthclient.DeviceCode) error { return boom },
	}
	if _, err := oauthclient.DeviceLogin(context.Background(), cfg); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the prompt's error", err)
	}
}

func TestDeviceLoginRequiresFields(t *testing.T) {
	_, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{TokenURL: "https://as.example/token"})
	if err == nil || !strings.HasPrefix(err.Error(), "oauthclient: ") {
		t.Fatalf("error %v, want a missing-field error", err)
	}
	_, err = oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
		DeviceAuthURL: "http://as.example/device", TokenURL: "https://as.example/token", ClientID: "cli"})
	if !errors.Is(err, oauthclient.ErrInsecureURL) {
		t.Fatalf("error %v, want ErrInsecureURL", err)
	}
}

func TestServerMetadataDeviceEndpoint(t *testing.T) {
	m, err := oauthclient.ParseServerMetadata([]byte(`{"issuer":"https://as.example","token_endpoint":"https://as.example/token","device_authorization_endpoint":"https://as.example/device"}`), "https://as.example")
	if err != nil {
		t.Fatal(err)
	}
	if m.DeviceAuthorizationEndpoint != "https://as.example/device" {
		t.Errorf("DeviceAuthorizationEndpoint = %q", m.DeviceAuthorizationEndpoint)
	}
	c, err := oauthclient.ParseSMARTConfiguration([]byte(`{"token_endpoint":"https://as.example/token","device_authorization_endpoint":"https://as.example/device"}`))
	if err != nil {
		t.Fatal(err)
	}
	if c.DeviceAuthorizationEndpoint != "https://as.example/device" {
		t.Errorf("SMART DeviceAuthorizationEndpoint = %q", c.DeviceAuthorizationEndpoint)
	}
}
