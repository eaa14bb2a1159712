package tokencache_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/oauthkit/oauthkit/tokencache"
)

func ExampleKey() {
	a := tokencache.Key(tokencache.KeyParts{
		TokenURL: "https://fhir.example.org/oauth2/token",
		ClientID: "abc",
		Grant:    "client_credentials",
		Scopes:   []string{"system/Patient.rs", "system/Observation.rs"},
	})
	b := tokencache.Key(tokencache.KeyParts{
		TokenURL: "https://fhir.example.org/oauth2/token",
		ClientID: "abc",
		Grant:    "client_credentials",
		Scopes:   []string{"system/Observation.rs", "system/Patient.rs"},
	})
	fmt.Println(a == b, len(a), a[:3])
	// Output: true 67 v1-
}

func ExampleNewFile() {
	dir, err := os.MkdirTemp("", "tokens")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	cache, err := tokencache.NewFile(filepath.Join(dir, "oauthkit"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	key := tokencache.Key(tokencache.KeyParts{TokenURL: "https://example.org/token", ClientID: "abc"})

	// Serialise token requests for this key across processes.
	unlock, err := cache.Lock(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	defer unlock()

	err = cache.Store(ctx, key, &tokencache.Entry{
		AccessToken: "example-access-token",
		TokenType:   "Bearer",
		Expiry:      time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	e, err := cache.Load(ctx, key)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e) // secrets are redacted
	// Output: tokencache.Entry{AccessToken:REDACTED TokenType:"Bearer" RefreshToken:"" Expiry:2030-01-01T00:00:00Z Scope:""}
}

func ExampleEncode() {
	b, err := tokencache.Encode(&tokencache.Entry{
		AccessToken: "at",
		TokenType:   "Bearer",
		Expiry:      time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))
	// Output: {"v":1,"access_token":"at","token_type":"Bearer","expiry":"2030-01-01T00:00:00Z"}
}
