package interop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

// RefreshToken obtains a first refresh token for the app client clientID
// (Provider.App or Provider.Public) through the real authorization code flow
// with PKCE: the test acts as the browser against oidc-provider's
// development login and consent pages. scopes defaults to patient/Patient.rs.
func (p *Provider) RefreshToken(t testing.TB, clientID string, scopes ...string) string {
	t.Helper()
	tr := p.AuthorizationCode(t, clientID, scopes...)
	if tr.RefreshToken == "" {
		t.Fatalf("interop: authorization code response has no refresh token")
	}
	return tr.RefreshToken
}

// AuthorizationCode runs the authorization code flow with PKCE for clientID
// as user "interop-user" and returns the token response.
func (p *Provider) AuthorizationCode(t testing.TB, clientID string, scopes ...string) *TokenResponse {
	t.Helper()
	c := p.Client(t, clientID)
	if len(scopes) == 0 {
		scopes = []string{"patient/Patient.rs"}
	}
	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(t, 32))
	sum := sha256.Sum256([]byte(verifier))
	state := randomHex(t, 16)

	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {callbackURL},
		"scope":                 {strings.Join(scopes, " ")},
		"state":                 {state},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
	}
	loc, err := p.Approve(p.AuthorizationURL + "?" + q.Encode())
	if err != nil {
		t.Fatalf("%v", err)
	}
	if loc.Query().Get("state") != state {
		t.Fatalf("interop: authorization: state mismatch")
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("interop: authorization: no code in redirect")
	}

	tr, err := p.postToken(context.Background(), c, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {callbackURL},
		"code_verifier": {verifier},
	})
	if err != nil {
		t.Fatalf("interop: redeem authorization code: %v", err)
	}
	return tr
}

// Approve acts as the user's browser for an authorization request URL:
// it signs in as "interop-user" on oidc-provider's development login page,
// grants consent, and returns the redirect to the client's loopback
// callback without following it. An error redirect becomes an error. It
// does not use testing.TB, so it may run on any goroutine.
func (p *Provider) Approve(authURL string) (*url.URL, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("interop: cookie jar: %w", err)
	}
	issuerURL, err := url.Parse(p.Issuer)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	browser := &http.Client{
		Jar:     jar,
		Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > 10 {
				return errors.New("interop: too many redirects")
			}
			if req.URL.Host != issuerURL.Host {
				return http.ErrUseLastResponse // the redirect to the app's loopback callback
			}
			return nil
		},
	}
	resp, err := browse(browser, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	// Login page, then consent page, then the redirect to the callback.
	for step, form := range []url.Values{
		{"prompt": {"login"}, "login": {"interop-user"}, "password": {"interop"}},
		{"prompt": {"consent"}},
	} {
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Request.URL.Path, "/interaction/") {
			return nil, fmt.Errorf("interop: authorization step %d: status %d at %s", step, resp.StatusCode, resp.Request.URL.Path)
		}
		if resp, err = browse(browser, http.MethodPost, resp.Request.URL.String(), form); err != nil {
			return nil, err
		}
	}
	if resp.StatusCode/100 != 3 {
		return nil, fmt.Errorf("interop: authorization: expected a redirect to the callback, got status %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("interop: authorization: bad Location: %w", err)
	}
	if e := loc.Query().Get("error"); e != "" {
		return nil, fmt.Errorf("interop: authorization: error %q (%s)", e, loc.Query().Get("error_description"))
	}
	if got := loc.Query().Get("iss"); got != "" && got != p.Issuer {
		return nil, fmt.Errorf("interop: authorization: iss %q, want %q", got, p.Issuer)
	}
	return loc, nil
}

// browse makes one browser request and drains the body.
func browse(c *http.Client, method, u string, form url.Values) (*http.Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	req.Header.Set("Accept", "text/html")
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		// The URL may hold an authorization code and state: print the path only.
		return nil, fmt.Errorf("interop: %s %s: %w", method, req.URL.Path, withoutURL(err))
	}
	_ = drain(resp)
	return resp, nil
}
