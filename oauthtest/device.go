package oauthtest

import (
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// GrantDeviceCode is the grant_type of the device authorization grant
// (RFC 8628 §3.4), as used in [Client.GrantTypes] and [Stats.ByGrant].
const GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"

// Defaults of the device authorization endpoint.
const (
	defaultDeviceInterval = time.Second      // short, so that tests do not wait 5 s a poll
	defaultDeviceLifetime = 10 * time.Minute // of a device code
)

// ErrUnknownUserCode is returned by the device approval hooks for a user
// code that was never issued or is no longer pending.
var ErrUnknownUserCode = errors.New("oauthtest: unknown or finished user code")

// deviceState holds the device authorization grant's codes and settings.
// Guarded by Server.mu.
type deviceState struct {
	byCode      map[string]*deviceGrant // device_code → grant
	byUser      map[string]*deviceGrant // user_code → grant
	interval    time.Duration
	intervalSet bool
	lifetime    time.Duration
}

// deviceGrant is one device authorization request.
type deviceGrant struct {
	clientID   string
	scopes     []string
	userCode   string
	expiry     time.Time
	subject    string // set on approval
	approved   bool
	denied     bool
	slowDowns  int  // polls still to answer slow_down
	consumed   bool // tokens were issued
	deviceCode string
}

// DeviceAuthorizationURL returns URL + "/device_authorization", the device
// authorization endpoint (RFC 8628 §3.1), also advertised in the metadata
// as device_authorization_endpoint.
func (s *Server) DeviceAuthorizationURL() string { return s.URL + "/device_authorization" }

// DeviceVerificationURL returns URL + "/device", the verification_uri
// shown to users. It serves a plain page only: tests decide with
// ApproveDevice, DenyDevice, ExpireDevice and SlowDownDevice.
func (s *Server) DeviceVerificationURL() string { return s.URL + "/device" }

// SetDeviceInterval sets the polling interval sent with new device codes,
// rounded up to whole seconds; d <= 0 leaves interval out of the answer
// (clients then poll every 5 s). The default is 1 s, so that tests do not
// wait long.
func (s *Server) SetDeviceInterval(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device.interval, s.device.intervalSet = max(d, 0), true
}

// SetDeviceCodeLifetime sets the lifetime of new device codes, by the
// server's clock (see SetNow). The default is 10 minutes.
func (s *Server) SetDeviceCodeLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device.lifetime = d
}

// ApproveDevice acts as the user approving the request of userCode as
// subject: the next poll gets tokens (with a refresh token when the client
// may use the refresh_token grant).
func (s *Server) ApproveDevice(userCode, subject string) error {
	return s.decideDevice(userCode, func(g *deviceGrant) { g.approved, g.subject = true, subject })
}

// DenyDevice acts as the user denying the request of userCode: the next
// poll gets access_denied.
func (s *Server) DenyDevice(userCode string) error {
	return s.decideDevice(userCode, func(g *deviceGrant) { g.denied = true })
}

// ExpireDevice lets the device code of userCode expire now: polls get
// expired_token.
func (s *Server) ExpireDevice(userCode string) error {
	return s.decideDevice(userCode, func(g *deviceGrant) { g.expiry = s.now() })
}

// SlowDownDevice makes the next n polls for userCode answer slow_down, as
// a server does when a client polls too often.
func (s *Server) SlowDownDevice(userCode string, n int) error {
	return s.decideDevice(userCode, func(g *deviceGrant) { g.slowDowns += max(n, 0) })
}

// PendingUserCodes returns the user codes of the device requests not yet
// approved or denied, oldest first is not guaranteed: they are sorted.
func (s *Server) PendingUserCodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for uc, g := range s.device.byUser {
		if !g.approved && !g.denied && !g.consumed && s.now().Before(g.expiry) {
			out = append(out, uc)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Server) decideDevice(userCode string, f func(*deviceGrant)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.device.byUser[normalizeUserCode(userCode)]
	if g == nil || g.consumed {
		return ErrUnknownUserCode
	}
	f(g)
	return nil
}

// normalizeUserCode makes a typed user code comparable: upper case,
// without dashes and spaces (RFC 8628 §6.1).
func normalizeUserCode(uc string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, uc)
}

// userCodeChars has no vowels and no look-alike characters (RFC 8628 §6.1).
const userCodeChars = "BCDFGHJKLMNPQRSTVWXZ"

// newUserCode returns 8 characters of userCodeChars.
func newUserCode() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = userCodeChars[int(b[i])%len(userCodeChars)]
	}
	return string(b[:])
}

// handleDeviceAuthorization serves the device authorization endpoint.
func (s *Server) handleDeviceAuthorization(w http.ResponseWriter, r *http.Request) {
	form, oerr := readForm(r)
	if oerr == nil {
		oerr = checkFormRequest(r, form)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, oerr := s.authenticateClientLocked(r, form, []string{s.TokenURL(), s.DeviceAuthorizationURL(), s.Issuer()})
	if oerr == nil && c == nil {
		oerr = errClient(false, "client authentication required")
	}
	if oerr == nil {
		oerr = checkGrantAllowed(c, GrantDeviceCode)
	}
	var scopes []string
	if oerr == nil {
		scopes, oerr = parseScope(form)
	}
	if oerr == nil {
		oerr = checkScopesAllowed(c, scopes)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	ds := &s.device
	if ds.byCode == nil {
		ds.byCode, ds.byUser = make(map[string]*deviceGrant), make(map[string]*deviceGrant)
	}
	lifetime := ds.lifetime
	if lifetime <= 0 {
		lifetime = defaultDeviceLifetime
	}
	g := &deviceGrant{clientID: c.ID, scopes: scopes, expiry: s.now().Add(lifetime), deviceCode: newOpaqueToken()}
	for g.userCode == "" || ds.byUser[g.userCode] != nil {
		g.userCode = newUserCode()
	}
	ds.byCode[g.deviceCode], ds.byUser[g.userCode] = g, g
	shown := g.userCode[:4] + "-" + g.userCode[4:]
	resp := map[string]any{
		"device_code":               g.deviceCode,
		"user_code":                 shown,
		"verification_uri":          s.DeviceVerificationURL(),
		"verification_uri_complete": s.DeviceVerificationURL() + "?user_code=" + url.QueryEscape(shown),
		"expires_in":                int64((lifetime + time.Second - 1) / time.Second),
	}
	interval := defaultDeviceInterval
	if ds.intervalSet {
		interval = ds.interval
	}
	if interval > 0 {
		resp["interval"] = int64((interval + time.Second - 1) / time.Second)
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, "application/json", resp)
	s.logInfo("oauthtest: device authorization", "client_id", c.ID)
}

// handleDevicePage serves the verification_uri.
func (s *Server) handleDevicePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "oauthtest: device login pending; tests approve it with Server.ApproveDevice.\n")
}

// deviceGrantLocked checks the device code of authenticated client c and
// issues tokens once the user approved. s.mu must be held.
func (s *Server) deviceGrantLocked(c *registeredClient, form url.Values) (*tokenResponse, *oauthError) {
	code := form.Get("device_code")
	if code == "" {
		return nil, errRequest("device_code is required")
	}
	g := s.device.byCode[code]
	switch {
	case g == nil || g.clientID != c.ID:
		return nil, errGrant("unknown device code")
	case g.consumed:
		return nil, errGrant("device code was already used")
	case !s.now().Before(g.expiry):
		return nil, errCode("expired_token", "the device code expired")
	case g.slowDowns > 0:
		g.slowDowns--
		return nil, errCode("slow_down", "polling too often")
	case g.denied:
		g.consumed = true
		return nil, errCode("access_denied", "the user denied the request")
	case !g.approved:
		return nil, errCode("authorization_pending", "the user has not approved the request yet")
	}
	g.consumed = true
	refresh := checkGrantAllowed(c, GrantRefreshToken) == nil
	return s.issueLocked(issueParams{client: c, subject: g.subject, scopes: g.scopes, withRefresh: refresh}), nil
}
