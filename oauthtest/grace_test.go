package oauthtest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/internal/testclock"
)

func TestRefreshReuseGrace(t *testing.T) {
	tests := []struct {
		name      string
		grace     time.Duration
		after     time.Duration // between the rotation and the reuse
		wantReuse bool          // the reuse is answered like a rotation
	}{
		{name: "strict by default", grace: 0, after: 0},
		{name: "strict after a while", grace: 0, after: time.Second},
		{name: "within grace", grace: 5 * time.Second, after: 0, wantReuse: true},
		{name: "within grace, near its end", grace: 5 * time.Second, after: 5*time.Second - time.Millisecond, wantReuse: true},
		{name: "at the end of grace", grace: 5 * time.Second, after: 5 * time.Second},
		{name: "after grace", grace: 5 * time.Second, after: time.Minute},
		{name: "negative grace is strict", grace: -time.Second, after: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			clk := testclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
			e.srv.SetNow(clk.Now)
			if tt.grace != 0 {
				e.srv.SetRefreshReuseGrace(tt.grace)
			}
			rt0, err := e.srv.IssueRefreshToken("basic", "alice", []string{"system/Patient.rs"})
			if err != nil {
				t.Fatal(err)
			}
			r1 := e.refresh(t, rt0, "")
			if r1.status != http.StatusOK || r1.str("refresh_token") == "" {
				t.Fatalf("first refresh: %v", r1)
			}
			clk.Advance(tt.after)

			r2 := e.refresh(t, rt0, "")
			st := e.srv.Stats()
			if !tt.wantReuse {
				if r2.str("error") != "invalid_grant" {
					t.Fatalf("reuse: %v, want invalid_grant", r2)
				}
				if st.RefreshReuseDetected != 1 || st.RefreshGraceReuses != 0 {
					t.Errorf("RefreshReuseDetected = %d, RefreshGraceReuses = %d; want 1, 0", st.RefreshReuseDetected, st.RefreshGraceReuses)
				}
				if r := e.refresh(t, r1.str("refresh_token"), ""); r.str("error") != "invalid_grant" {
					t.Errorf("refresh token of the revoked family: %v, want invalid_grant", r)
				}
				if got := e.resourceStatus(t, r1.str("access_token")); got != http.StatusUnauthorized {
					t.Errorf("access token of the revoked family: status %d, want 401", got)
				}
				return
			}
			if r2.status != http.StatusOK || r2.str("access_token") == "" || r2.str("refresh_token") == "" {
				t.Fatalf("reuse within grace: %v (refresh token returned: %v)", r2, r2.str("refresh_token") != "")
			}
			if r2.str("refresh_token") == r1.str("refresh_token") || r2.str("refresh_token") == rt0 {
				t.Error("reuse within grace did not mint a new refresh token")
			}
			if st.RefreshReuseDetected != 0 || st.RefreshGraceReuses != 1 {
				t.Errorf("RefreshReuseDetected = %d, RefreshGraceReuses = %d; want 0, 1", st.RefreshReuseDetected, st.RefreshGraceReuses)
			}
			// The family stays alive: both branches work.
			for i, tok := range []string{r1.str("access_token"), r2.str("access_token")} {
				if got := e.resourceStatus(t, tok); got != http.StatusOK {
					t.Errorf("access token %d: status %d, want 200", i+1, got)
				}
			}
			if r := e.refresh(t, r1.str("refresh_token"), ""); r.status != http.StatusOK {
				t.Errorf("refresh token of the first rotation: %v", r)
			}
			if r := e.refresh(t, r2.str("refresh_token"), ""); r.status != http.StatusOK {
				t.Errorf("refresh token of the grace rotation: %v", r)
			}
			// Presenting it again does not extend the period.
			clk.Advance(tt.grace)
			if r := e.refresh(t, rt0, ""); r.str("error") != "invalid_grant" {
				t.Errorf("reuse after grace: %v, want invalid_grant", r)
			}
			if got := e.srv.Stats().RefreshReuseDetected; got != 1 {
				t.Errorf("RefreshReuseDetected after grace = %d, want 1", got)
			}
		})
	}
}
