package oauthclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"golang.org/x/oauth2"
)

// Static is a Source for a long-lived access token obtained elsewhere (a
// "notifier" token, a personal access token). It never refreshes; a 401
// from the resource server is returned to the caller as is. Safe for
// concurrent use.
type Static struct {
	st *tokenState
}

// NewStatic returns a Static source for accessToken.
func NewStatic(accessToken string) (*Static, error) {
	if accessToken == "" {
		return nil, errors.New("oauthclient: NewStatic: empty token")
	}
	tok := &oauth2.Token{AccessToken: accessToken, TokenType: "Bearer"}
	st := newTokenState(tok, "Bearer "+accessToken)
	st.flags.Store(flagTimed | flagUsed) // never stale: hot from the start
	return &Static{st: st}, nil
}

// Token returns a copy of the static token.
func (s *Static) Token(context.Context) (*oauth2.Token, error) {
	t := *s.st.tok
	return &t, nil
}

func (s *Static) current(context.Context) (*tokenState, error) { return s.st, nil }
func (s *Static) reject(*tokenState) bool                      { return false }

// Client returns a copy of base (nil: a new client) whose Transport adds
// the static token.
func (s *Static) Client(base *http.Client) *http.Client { return wrapClient(base, s, nil) }

// String redacts the token.
func (s *Static) String() string { return "oauthclient.Static{Token:REDACTED}" }

// GoString redacts the token.
func (s *Static) GoString() string { return s.String() }

// Format redacts the token for every fmt verb.
func (s *Static) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// LogValue redacts the token in slog output.
func (s *Static) LogValue() slog.Value { return slog.StringValue(s.String()) }
