package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/tokencache"
)

// Device clients registered by provider/server.mjs itself.
const (
	deviceClientID      = "device-public" // device codes valid 10 minutes
	deviceShortClientID = "device-short"  // device codes valid 1 second
)

// xsrfInput finds the xsrf field of oidc-provider's device forms.
var xsrfInput = regexp.MustCompile(`name="xsrf" value="([^"]+)"`)

// deviceBrowser plays the user for oidc-provider's device flow: it opens
// the verification URI, enters userCode, and then either approves (signs
// in as "interop-user" and consents) or aborts.
func (p *Provider) deviceBrowser(verificationURI, userCode string, approve bool) error {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return fmt.Errorf("interop: cookie jar: %w", err)
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	page := func(method, u string, form url.Values) (*http.Response, string, error) {
		var body *strings.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		} else {
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, u, body)
		if err != nil {
			return nil, "", fmt.Errorf("interop: %w", err)
		}
		req.Header.Set("Accept", "text/html")
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := browser.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("interop: %s %s: %w", method, req.URL.Path, withoutURL(err))
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, rerr := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if rerr != nil || sb.Len() > 1<<20 {
				break
			}
		}
		return resp, sb.String(), nil
	}
	xsrf := func(html string) (string, error) {
		m := xsrfInput.FindStringSubmatch(html)
		if m == nil {
			return "", errors.New("interop: device page without xsrf field")
		}
		return m[1], nil
	}
	// The code input page, then the confirmation page.
	_, html, err := page(http.MethodGet, verificationURI, nil)
	if err != nil {
		return err
	}
	token, err := xsrf(html)
	if err != nil {
		return err
	}
	_, html, err = page(http.MethodPost, verificationURI, url.Values{"xsrf": {token}, "user_code": {userCode}})
	if err != nil {
		return err
	}
	if token, err = xsrf(html); err != nil {
		return err
	}
	decision := url.Values{"xsrf": {token}, "user_code": {userCode}}
	if approve {
		decision.Set("confirm", "yes")
	} else {
		decision.Set("abort", "yes")
	}
	resp, _, err := page(http.MethodPost, verificationURI, decision)
	if err != nil || !approve {
		return err
	}
	// Login page, then consent page, then the device flow's success page.
	for step, form := range []url.Values{
		{"prompt": {"login"}, "login": {"interop-user"}, "password": {"interop"}},
		{"prompt": {"consent"}},
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/interaction/") {
			return fmt.Errorf("interop: device step %d: status %d at %s", step, resp.StatusCode, resp.Request.URL.Path)
		}
		if resp, _, err = page(http.MethodPost, resp.Request.URL.String(), form); err != nil {
			return err
		}
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("interop: device approval ended with status %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return nil
}

// deviceClock is a fake clock for DeviceLogin. Sleep records each wait
// and advances Now; it waits real time only for the waits listed in real
// (by number, from 1), and runs onSleep afterwards.
type deviceClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  []time.Duration
	real    map[int]time.Duration
	frozen  bool // Now does not advance
	onSleep func(n int) error
	err     error
}

func (c *deviceClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *deviceClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	if !c.frozen {
		c.now = c.now.Add(d)
	}
	n := len(c.sleeps)
	wait := c.real[n]
	c.mu.Unlock()
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if c.onSleep != nil {
		if err := c.onSleep(n); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
		}
	}
	return ctx.Err()
}

func (c *deviceClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// deviceSetup starts a provider and discovers its device endpoint.
func deviceSetup(t *testing.T) (*Provider, *oauthclient.ServerMetadata) {
	t.Helper()
	p := startProvider(t, ProviderOptions{})
	meta, err := oauthclient.DiscoverServer(context.Background(), p.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if meta.DeviceAuthorizationEndpoint == "" {
		t.Fatal("discovery: no device_authorization_endpoint")
	}
	return p, meta
}

func TestDeviceLoginApproved(t *testing.T) {
	p, meta := deviceSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	clock := &deviceClock{now: time.Now()}
	tok, err := oauthclient.DeviceLogin(ctx, oauthclient.DeviceLoginConfig{
		DeviceAuthURL: meta.DeviceAuthorizationEndpoint,
		TokenURL:      meta.TokenEndpoint,
		ClientID:      deviceClientID,
		Scopes:        []string{"openid", "offline_access"},
		Prompt: func(c oauthclient.DeviceCode) error {
			if c.VerificationURIComplete == "" || c.ExpiresIn <= 0 || c.Interval != 5*time.Second {
				return fmt.Errorf("unexpected device code answer: complete URI %v, expires_in %v, interval %v",
					c.VerificationURIComplete != "", c.ExpiresIn, c.Interval)
			}
			return p.deviceBrowser(c.VerificationURI, c.UserCode, true)
		},
		Now: clock.Now, Sleep: clock.Sleep,
	})
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("token: access %v, refresh %v; want both", tok.AccessToken != "", tok.RefreshToken != "")
	}
	if got := clock.Sleeps(); len(got) != 1 || got[0] != 5*time.Second {
		t.Errorf("waits before polls = %v, want [5s]", got)
	}

	// The login's refresh token works in a RefreshToken source.
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: meta.TokenEndpoint, ClientID: deviceClientID, Grant: oauthclient.RefreshToken{},
		Scopes: []string{"openid", "offline_access"},
		Cache:  tokencache.NewMemory(), CacheKey: "device/interop-user",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Seed(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := ts.Token(ctx)
	assertNoSecret(t, err, tok.AccessToken, tok.RefreshToken)
	if err != nil || got.AccessToken == "" {
		t.Fatalf("token after seeding: %v", err)
	}
}

func TestDeviceLoginDenied(t *testing.T) {
	p, meta := deviceSetup(t)
	clock := &deviceClock{now: time.Now()}
	_, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
		DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint, ClientID: deviceClientID,
		Scopes: []string{"openid"},
		Prompt: func(c oauthclient.DeviceCode) error { return p.deviceBrowser(c.VerificationURI, c.UserCode, false) },
		Now:    clock.Now, Sleep: clock.Sleep,
	})
	if !errors.Is(err, oauthclient.ErrDeviceAccessDenied) {
		t.Fatalf("error %v, want ErrDeviceAccessDenied", err)
	}
	var te *oauthclient.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "access_denied" {
		t.Fatalf("error %v does not wrap a TokenError access_denied", err)
	}
}

func TestDeviceLoginExpired(t *testing.T) {
	_, meta := deviceSetup(t)
	// The device-short client's codes live 1 s by the server's clock,
	// which cannot be injected: the first poll waits 2.5 s of real time.
	// The client's clock stands still, so that the server, not the
	// client's own deadline, decides that the code expired.
	clock := &deviceClock{now: time.Now(), frozen: true, real: map[int]time.Duration{1: 2500 * time.Millisecond}}
	_, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
		DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint, ClientID: deviceShortClientID,
		Scopes: []string{"openid"},
		Prompt: func(oauthclient.DeviceCode) error { return nil },
		Now:    clock.Now, Sleep: clock.Sleep,
	})
	if !errors.Is(err, oauthclient.ErrDeviceCodeExpired) {
		t.Fatalf("error %v, want ErrDeviceCodeExpired", err)
	}
	var te *oauthclient.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "expired_token" {
		t.Fatalf("error %v does not wrap a TokenError expired_token (the server's answer)", err)
	}
}

func TestDeviceLoginSlowDown(t *testing.T) {
	p, meta := deviceSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var verificationURI, userCode string
	// Polls 1 and 2 are sent at once (injected time): the server answers
	// authorization_pending, then slow_down. Polls 3 and 4 wait more than
	// the server's 1 s minimum in real time; the user approves before poll 4.
	clock := &deviceClock{now: time.Now(), real: map[int]time.Duration{3: 1200 * time.Millisecond, 4: 1200 * time.Millisecond}}
	clock.onSleep = func(n int) error {
		if n == 4 {
			return p.deviceBrowser(verificationURI, userCode, true)
		}
		return nil
	}
	tok, err := oauthclient.DeviceLogin(ctx, oauthclient.DeviceLoginConfig{
		DeviceAuthURL: meta.DeviceAuthorizationEndpoint, TokenURL: meta.TokenEndpoint, ClientID: deviceClientID,
		Scopes: []string{"openid", "offline_access"},
		Prompt: func(c oauthclient.DeviceCode) error {
			verificationURI, userCode = c.VerificationURI, c.UserCode
			return nil
		},
		Now: clock.Now, Sleep: clock.Sleep,
	})
	if clock.err != nil {
		t.Fatalf("user approval: %v", clock.err)
	}
	if err != nil {
		t.Fatalf("device login: %v", err)
	}
	if tok.AccessToken == "" {
		t.Fatal("no access token")
	}
	want := []time.Duration{5 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second}
	got := clock.Sleeps()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits before polls = %v, want %v (5 s added after slow_down, and kept)", got, want)
	}
	if n := p.Stats(t).TokenErrorsByCode["slow_down"]; n != 1 {
		t.Errorf("server answered slow_down %d times, want 1", n)
	}
}
