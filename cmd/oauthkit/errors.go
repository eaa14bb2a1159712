package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// messageCleaner turns library error text into command-line text: one
// "oauthkit:" prefix (the packages' own prefixes go) and flag names where
// the library names its Go fields.
var messageCleaner = strings.NewReplacer(
	"oauthkit: ", "",
	"oauthclient: ", "",
	"jwtassert: ", "",
	"tokencache: ", "",
	"keyring: ", "",
	"Config.TokenURL", "-token-url",
	"Config.RevocationURL", "-revocation-url",
	"Config.ClientID", "-client-id",
	"Config.Scopes", "-scope",
	"PrivateKeyJWT.Signer", "-key",
	"PrivateKeyJWT.Lifetime", "assertion lifetime",
)

// cleanMessage returns err's text for the single "oauthkit: …" line.
func cleanMessage(err error) string {
	return messageCleaner.Replace(oneLine(err.Error()))
}

// hintError gives an error the text a user can act on while keeping the
// original in the chain for errors.Is and errors.As.
type hintError struct {
	msg string
	err error
}

func (e *hintError) Error() string { return e.msg }
func (e *hintError) Unwrap() error { return e.err }

// explain adds what to do next to the errors a user can act on.
func explain(ctx context.Context, err error, timeout time.Duration) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, oauthclient.ErrReauthRequired):
		var te *oauthclient.TokenError
		if errors.As(err, &te) {
			return &hintError{msg: fmt.Sprintf("the refresh token was rejected (%s); log in again: run 'oauthkit login' with the same client ID, token URL, scopes and -cache", te.ErrorCode), err: err}
		}
		return &hintError{msg: "no token of 'oauthkit login' is cached for this client ID, token URL and scope set; run 'oauthkit login' with the same -client-id, endpoint, -scope and -cache", err: err}
	case errors.Is(err, oauthclient.ErrInsecureURL):
		return fmt.Errorf("%w (use https)", err)
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("%w (gave up after %s; see -timeout)", err, timeout)
	}
	return err
}
