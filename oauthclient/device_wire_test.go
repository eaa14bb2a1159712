package oauthclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// scriptedDeviceServer answers the device authorization request with
// deviceCode and the token requests with answers, in order (nil: drop the
// connection), counting the polls.
func scriptedDeviceServer(t *testing.T, deviceAuth string, answers []func(w http.ResponseWriter)) (*httptest.Server, *int) {
	t.Helper()
	var mu sync.Mutex
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/device" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, deviceAuth)
			return
		}
		mu.Lock()
		i := polls
		polls++
		mu.Unlock()
		if i >= len(answers) {
			t.Errorf("poll %d not expected", i+1)
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if answers[i] == nil {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		answers[i](w)
	}))
	t.Cleanup(srv.Close)
	return srv, &polls
}

func jsonAnswer(status int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

func TestDeviceLoginBacksOffAfterFailures(t *testing.T) {
	const deviceAuth = `{"device_code":"dc-1","user_code":"ABCD-EFGH","verification_uri":"https://as.example/device","expires_in":1800}`
	pending := jsonAnswer(400, `{"error":"authorization_pending"}`)
	srv, polls := scriptedDeviceServer(t, deviceAuth, []func(http.ResponseWriter){
		nil, // network error
		jsonAnswer(503, `{"error":"temporarily_unavailable"}`),
		pending,
		jsonAnswer(503, `{"error":"temporarily_unavailable"}`, "Retry-After", "120"),
		pending,
		jsonAnswer(200, `{"access_token":"at-1","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-1"}`),
	})
	clock := newDeviceClock()
	tok, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
		DeviceAuthURL: srv.URL + "/device", TokenURL: srv.URL + "/token", ClientID: "cli",
		Out: &bytes.Buffer{}, Now: clock.Now, Sleep: clock.Sleep,
	})
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 5 * time.Second, 120 * time.Second, 5 * time.Second}
	if got := clock.Sleeps(); !equalDurations(got, want) {
		t.Errorf("waits before polls = %v, want %v", got, want)
	}
	if *polls != 6 {
		t.Errorf("%d polls, want 6", *polls)
	}
}

func TestDeviceLoginKeepsDeviceCodeSecret(t *testing.T) {
	const marker = "dc-MARKER-7f3a9"
	const deviceAuth = `{"device_code":"` + marker + `","user_code":"WXYZ-\u001b[2J","verification_uri":"https://as.example/device","expires_in":600,"interval":2}`
	srv, _ := scriptedDeviceServer(t, deviceAuth, []func(http.ResponseWriter){
		jsonAnswer(400, `{"error":"invalid_grant","error_description":"device code `+marker+` unknown"}`),
	})
	clock := newDeviceClock()
	var out bytes.Buffer
	_, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
		DeviceAuthURL: srv.URL + "/device", TokenURL: srv.URL + "/token", ClientID: "cli",
		Out: &out, Now: clock.Now, Sleep: clock.Sleep,
	})
	var te *oauthclient.TokenError
	if !errors.As(err, &te) || te.ErrorCode != "invalid_grant" {
		t.Fatalf("want a TokenError invalid_grant, got %T", err)
	}
	for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), out.String()} {
		if strings.Contains(text, marker) {
			t.Fatal("the device code appears in the error or the output")
		}
	}
	if strings.ContainsRune(out.String(), 0x1b) {
		t.Error("a control character from the server reached the terminal")
	}
	if !strings.Contains(out.String(), "WXYZ-") || !strings.Contains(out.String(), "https://as.example/device") {
		t.Errorf("instructions lack the user code or the URL:\n%s", out.String())
	}
}

func TestDeviceLoginRejectsBadResponses(t *testing.T) {
	tests := []struct{ name, body string }{
		{"no device code", `{"user_code":"A","verification_uri":"https://x/d","expires_in":60}`},
		{"no user code", `{"device_code":"d","verification_uri":"https://x/d","expires_in":60}`},
		{"no verification uri", `{"device_code":"d","user_code":"A","expires_in":60}`},
		{"no expires_in", `{"device_code":"d","user_code":"A","verification_uri":"https://x/d"}`},
		{"not json", `<html>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, polls := scriptedDeviceServer(t, tt.body, nil)
			_, err := oauthclient.DeviceLogin(context.Background(), oauthclient.DeviceLoginConfig{
				DeviceAuthURL: srv.URL + "/device", TokenURL: srv.URL + "/token", ClientID: "cli", Out: &bytes.Buffer{},
			})
			if !errors.Is(err, oauthclient.ErrMalformedResponse) {
				t.Fatalf("error %v, want ErrMalformedResponse", err)
			}
			if *polls != 0 {
				t.Errorf("%d polls after a bad answer", *polls)
			}
		})
	}
}
