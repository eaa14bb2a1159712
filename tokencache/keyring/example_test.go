package keyring_test

import (
	"context"
	"errors"
	"log"

	"github.com/oauthkit/oauthkit/tokencache"
	"github.com/oauthkit/oauthkit/tokencache/keyring"
)

// This example needs an OS keychain, so it is compiled but not run.
func ExampleNew() {
	cache := keyring.New("my-service")
	key := tokencache.Key(tokencache.KeyParts{
		TokenURL: "https://fhir.example.org/oauth2/token",
		ClientID: "abc",
		Grant:    "authorization_code",
	})
	e, err := cache.Load(context.Background(), key)
	switch {
	case errors.Is(err, tokencache.ErrNotFound), errors.Is(err, tokencache.ErrCorrupt):
		// Not logged in yet: run the login flow, then cache.Store the token.
	case errors.Is(err, keyring.ErrUnavailable):
		// No usable keychain; the message says what to install or unlock.
		log.Fatal(err)
	case err != nil:
		log.Fatal(err)
	default:
		_ = e.RefreshToken // use the refresh token
	}
}
