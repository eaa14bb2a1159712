package demo

import (
	"context"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// KeyID is the key ID of the demo client's key.
const KeyID = "demo-key-1"

// deleteTimeout bounds DeleteEntry.
const deleteTimeout = 10 * time.Second

// StartServer starts the embedded authorization and FHIR server and
// registers the backend client clientID, allowed system/Patient.rs, with a
// freshly generated RS384 key, as an administrator would register an app at
// Epic. A tokenLifetime of 0 keeps the server's default of one hour. The
// caller closes the server.
func StartServer(clientID string, tokenLifetime time.Duration) (*oauthtest.Server, *jwtassert.Signer, error) {
	key, err := jwtassert.GenerateKey("RS384")
	if err != nil {
		return nil, nil, err
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: KeyID})
	if err != nil {
		return nil, nil, err
	}
	// The public JWK Set: what Epic fetches from the app's "JWK Set URL".
	jwks, err := jwtassert.JWKS(signer)
	if err != nil {
		return nil, nil, err
	}
	srv := oauthtest.NewServer()
	if tokenLifetime > 0 {
		srv.SetTokenLifetime(tokenLifetime)
	}
	err = srv.RegisterClient(oauthtest.Client{
		ID:         clientID,
		JWKS:       jwks,
		AuthMethod: oauthtest.AuthPrivateKeyJWT,
		Scopes:     []string{"system/Patient.rs"},
	})
	if err != nil {
		srv.Close()
		return nil, nil, err
	}
	return srv, signer, nil
}

// DeleteEntry deletes key from cache, ignoring errors: the demo server's
// port changes every time, and with it the cache key, so the demo's token is
// useless once the demo ends.
func DeleteEntry(cache tokencache.Cache, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	cache.Delete(ctx, key)
}
