package oauthclient

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
)

func testSigner(t *testing.T, kid string) *jwtassert.Signer {
	t.Helper()
	key, err := jwtassert.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: kid})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPrivateKeyJWTLifetimeLimit: an assertion lifetime over five minutes
// is refused at NewTokenSource and in Apply, unless AllowLongLifetime.
func TestPrivateKeyJWTLifetimeLimit(t *testing.T) {
	signer := testSigner(t, "k1")
	tests := []struct {
		name   string
		auth   PrivateKeyJWT
		wantOK bool
	}{
		{"default", PrivateKeyJWT{Signer: signer}, true},
		{"five minutes", PrivateKeyJWT{Signer: signer, Lifetime: 5 * time.Minute}, true},
		{"ten minutes", PrivateKeyJWT{Signer: signer, Lifetime: 10 * time.Minute}, false},
		{"ten minutes allowed", PrivateKeyJWT{Signer: signer, Lifetime: 10 * time.Minute, AllowLongLifetime: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: tt.auth})
			if (err == nil) != tt.wantOK {
				t.Errorf("NewTokenSource: err = %v, want ok %v", err, tt.wantOK)
			}
			ar := &AuthRequest{ClientID: "c", TokenURL: "https://as.example/token", Form: url.Values{}, Header: http.Header{}, Now: time.Now()}
			err = tt.auth.Apply(ar)
			if (err == nil) != tt.wantOK {
				t.Errorf("Apply: err = %v, want ok %v", err, tt.wantOK)
			}
		})
	}
}

// TestPrivateKeyJWTNeedsKeyID: a signer without a key ID fails at
// NewTokenSource, not at the first token request.
func TestPrivateKeyJWTNeedsKeyID(t *testing.T) {
	noKID := testSigner(t, "")
	_, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: PrivateKeyJWT{Signer: noKID}})
	if !errors.Is(err, jwtassert.ErrMissingKeyID) {
		t.Errorf("signer without kid: err = %v, want ErrMissingKeyID", err)
	}
	ks := &jwtassert.KeySet{}
	_, err = NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: PrivateKeyJWT{Signer: ks}})
	if !errors.Is(err, jwtassert.ErrMissingKeyID) {
		t.Errorf("empty KeySet: err = %v, want ErrMissingKeyID", err)
	}
	if _, err := NewTokenSource(Config{TokenURL: "https://as.example/token", ClientID: "c", Auth: PrivateKeyJWT{Signer: testSigner(t, "k1")}}); err != nil {
		t.Errorf("signer with kid: %v", err)
	}
}
