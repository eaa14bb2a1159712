package oauthtest_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// deviceStart asks for a device code for the "public" client and returns
// the answer.
func (e *env) deviceStart(t *testing.T, form url.Values, mod func(*http.Request)) result {
	t.Helper()
	r := e.post(t, e.srv.DeviceAuthorizationURL(), form, mod)
	if r.status != http.StatusOK {
		t.Fatalf("device authorization: %v", r)
	}
	return r
}

func (e *env) devicePoll(t *testing.T, deviceCode string) result {
	t.Helper()
	return e.post(t, e.srv.TokenURL(), url.Values{
		"grant_type": {oauthtest.GrantDeviceCode}, "device_code": {deviceCode}, "client_id": {"public"},
	}, nil)
}

func TestDeviceGrantLifecycle(t *testing.T) {
	e := newEnv(t)
	start := e.deviceStart(t, url.Values{"client_id": {"public"}, "scope": {"user/Patient.rs"}}, nil)
	uc, dc := start.str("user_code"), start.str("device_code")
	if uc == "" || dc == "" || start.str("verification_uri") != e.srv.DeviceVerificationURL() ||
		!strings.HasPrefix(start.str("verification_uri_complete"), e.srv.DeviceVerificationURL()+"?user_code=") ||
		start.body["interval"] != float64(1) || start.body["expires_in"] != float64(600) {
		t.Fatalf("device authorization answer: %v", start.body["interval"])
	}
	if got := e.srv.PendingUserCodes(); len(got) != 1 {
		t.Fatalf("PendingUserCodes = %d codes, want 1", len(got))
	}
	steps := []struct {
		before func() error
		code   string
	}{
		{nil, "authorization_pending"},
		{func() error { return e.srv.SlowDownDevice(uc, 1) }, "slow_down"},
		{func() error { return e.srv.ApproveDevice(strings.ToLower(uc), "alice") }, ""},
		{nil, "invalid_grant"}, // single use
	}
	for i, s := range steps {
		if s.before != nil {
			if err := s.before(); err != nil {
				t.Fatal(err)
			}
		}
		r := e.devicePoll(t, dc)
		if r.str("error") != s.code {
			t.Fatalf("poll %d: %v, want error %q", i+1, r, s.code)
		}
		if s.code == "" && (r.str("access_token") == "" || r.str("refresh_token") == "") {
			t.Fatalf("poll %d: approved answer lacks tokens", i+1)
		}
	}
	if got := e.srv.Stats().ByGrant[oauthtest.GrantDeviceCode]; got != 4 {
		t.Errorf("ByGrant[device_code] = %d, want 4", got)
	}
	if err := e.srv.ApproveDevice(uc, "bob"); !errors.Is(err, oauthtest.ErrUnknownUserCode) {
		t.Errorf("approving a used code: %v, want ErrUnknownUserCode", err)
	}
}

func TestDeviceGrantDenyExpireAndClients(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		decide func(uc string) error
		code   string
	}{
		{"deny", func(uc string) error { return e.srv.DenyDevice(uc) }, "access_denied"},
		{"expire", func(uc string) error { return e.srv.ExpireDevice(uc) }, "expired_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := e.deviceStart(t, url.Values{"client_id": {"public"}}, nil)
			if err := tc.decide(start.str("user_code")); err != nil {
				t.Fatal(err)
			}
			if r := e.devicePoll(t, start.str("device_code")); r.str("error") != tc.code {
				t.Fatalf("%v, want %s", r, tc.code)
			}
		})
	}
	t.Run("confidential client", func(t *testing.T) {
		start := e.deviceStart(t, url.Values{}, basicAuth("basic", basicSecret))
		r := e.post(t, e.srv.TokenURL(), url.Values{"grant_type": {oauthtest.GrantDeviceCode}, "device_code": {start.str("device_code")}}, basicAuth("basic", basicSecret))
		if r.str("error") != "authorization_pending" {
			t.Fatalf("%v, want authorization_pending", r)
		}
		// The device code belongs to "basic": another client cannot redeem it.
		if r := e.devicePoll(t, start.str("device_code")); r.str("error") != "invalid_grant" {
			t.Fatalf("%v, want invalid_grant", r)
		}
	})
	t.Run("grant not allowed", func(t *testing.T) {
		r := e.post(t, e.srv.DeviceAuthorizationURL(), url.Values{"client_id": {"limited"}, "client_secret": {postSecret}}, nil)
		if r.str("error") != "unauthorized_client" {
			t.Fatalf("%v, want unauthorized_client", r)
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		r := e.post(t, e.srv.DeviceAuthorizationURL(), url.Values{"client_id": {"nobody"}}, nil)
		if r.str("error") != "invalid_client" {
			t.Fatalf("%v, want invalid_client", r)
		}
	})
}

func TestDeviceEndpointInMetadata(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration", "/fhir/.well-known/smart-configuration"} {
		req, err := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := e.do(t, req)
		if r.str("device_authorization_endpoint") != e.srv.DeviceAuthorizationURL() || r.str("token_endpoint") != e.srv.TokenURL() {
			t.Errorf("%s: device_authorization_endpoint %q", path, r.str("device_authorization_endpoint"))
		}
		gts, _ := r.body["grant_types_supported"].([]any)
		found := false
		for _, g := range gts {
			found = found || g == oauthtest.GrantDeviceCode
		}
		if !found {
			t.Errorf("%s: grant_types_supported lacks the device code grant", path)
		}
	}
}
