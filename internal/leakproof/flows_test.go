package leakproof_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
)

// clientID is the client identifier of every flow; it is not a secret.
const clientID = "leakproof-client"

// flowTimeout bounds one flow, so that a client that waits for a server
// that will never answer well fails instead of hanging.
const flowTimeout = 10 * time.Second

// flowKit holds what one flow needs: its secrets, the hostile server,
// the log buffer and the signing key.
type flowKit struct {
	book   *secretBook
	srv    *hostile
	logBuf *lockedBuffer
	logger *slog.Logger
	signer *jwtassert.Signer
	ctx    context.Context
}

// newFlowKit starts a hostile server and a Debug logger for one flow. The
// signing key is shared by the flows of one test; its private part is
// recorded in every book.
func newFlowKit(t *testing.T, key *ecdsa.PrivateKey, signer *jwtassert.Signer) *flowKit {
	t.Helper()
	book := newSecretBook()
	book.addKey("private key", key)
	k := &flowKit{book: book, srv: newHostile(t, book), logBuf: &lockedBuffer{}, signer: signer}
	k.logger = slog.New(slog.NewJSONHandler(k.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), flowTimeout)
	t.Cleanup(cancel)
	k.ctx = ctx
	return k
}

// secret makes a fresh secret and records it under label.
func (k *flowKit) secret(label string) string {
	s := newSecret(strings.ReplaceAll(label, " ", "") + "-")
	k.book.add(label, s)
	return s
}

// checkErr fails t if err, printed with %v or %+v, shows a secret. The
// secrets labelled allowed are not looked for.
func (k *flowKit) checkErr(t *testing.T, what string, err error, allowed ...string) {
	t.Helper()
	if err == nil {
		return
	}
	k.book.check(t, what+" error", err.Error(), allowed...)
	k.book.check(t, what+" error (%+v)", fmt.Sprintf("%+v", err), allowed...)
}

// checkDone fails t if the log shows a secret, and if the hostile server
// was never asked anything (then the flow proved nothing).
func (k *flowKit) checkDone(t *testing.T) {
	t.Helper()
	k.book.check(t, "log", k.logBuf.String())
	if k.srv.hits.Load() == 0 {
		t.Error("the hostile server received no request")
	}
}

// signingKey generates the ES256 key of the PrivateKeyJWT client
// authentication and the JWTBearer grant.
func signingKey(t *testing.T) (*ecdsa.PrivateKey, *jwtassert.Signer) {
	t.Helper()
	key, err := jwtassert.GenerateKey("ES256")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: "leakproof-1"})
	if err != nil {
		t.Fatal(err)
	}
	return key.(*ecdsa.PrivateKey), signer
}

// grants builds each grant with fresh secrets.
var grants = []struct {
	name string
	make func(k *flowKit) oauthclient.Grant
}{
	{"ClientCredentials", func(*flowKit) oauthclient.Grant { return oauthclient.ClientCredentials{} }},
	{"JWTBearer", func(k *flowKit) oauthclient.Grant {
		return oauthclient.JWTBearer{Signer: k.signer, Subject: "leakproof-user"}
	}},
	{"RefreshToken", func(k *flowKit) oauthclient.Grant {
		return oauthclient.RefreshToken{Token: k.secret("refresh token")}
	}},
	{"TokenExchange", func(k *flowKit) oauthclient.Grant {
		return oauthclient.TokenExchange{
			SubjectToken:   k.secret("subject token"),
			ActorToken:     k.secret("actor token"),
			ActorTokenType: oauthclient.TokenTypeAccessToken,
			Audience:       []string{"https://api.example"},
		}
	}},
	{"Password", func(k *flowKit) oauthclient.Grant {
		return oauthclient.Password{Username: "leakproof-user", Password: k.secret("password")}
	}},
}

// auths builds each client authentication with fresh secrets.
var auths = []struct {
	name string
	make func(k *flowKit) oauthclient.ClientAuth
}{
	{"ClientSecretBasic", func(k *flowKit) oauthclient.ClientAuth {
		return oauthclient.ClientSecretBasic{Secret: k.secret("client secret")}
	}},
	{"ClientSecretPost", func(k *flowKit) oauthclient.ClientAuth {
		return oauthclient.ClientSecretPost{Secret: k.secret("client secret")}
	}},
	{"PrivateKeyJWT", func(k *flowKit) oauthclient.ClientAuth { return oauthclient.PrivateKeyJWT{Signer: k.signer} }},
	{"NoClientAuth", func(*flowKit) oauthclient.ClientAuth { return oauthclient.NoClientAuth{} }},
}

// fastRetry keeps retried failure modes (500, network errors) quick.
var fastRetry = &oauthclient.RetryPolicy{
	MaxAttempts:     2,
	InitialInterval: time.Millisecond,
	MaxInterval:     time.Millisecond,
	MaxElapsed:      time.Second,
	MaxRetryAfter:   time.Millisecond,
}

// TestHostileServerFlowsHideSecrets runs every flow of the module against
// a server that echoes every credential it receives into every text it
// sends back, and fails when a secret shows in a returned error, the
// Debug log or the command line's output. Subtest names say which flow,
// grant, client authentication and failure mode leaked; failure lines say
// where and which secret (by label, never by value).
func TestHostileServerFlowsHideSecrets(t *testing.T) {
	key, signer := signingKey(t)
	t.Run("tokensource", func(t *testing.T) {
		for _, g := range grants {
			for _, a := range auths {
				for _, mode := range modes {
					t.Run(g.name+"/"+a.name+"/"+mode, func(t *testing.T) {
						k := newFlowKit(t, key, signer)
						tokenSourceFlow(t, k, g.make(k), a.make(k), mode)
					})
				}
			}
		}
	})
	t.Run("revoke", func(t *testing.T) {
		for _, a := range auths {
			for _, mode := range modes {
				t.Run(a.name+"/"+mode, func(t *testing.T) {
					k := newFlowKit(t, key, signer)
					revokeFlow(t, k, a.make(k), mode)
				})
			}
		}
	})
	t.Run("login", func(t *testing.T) {
		for _, a := range auths {
			for _, mode := range modes {
				t.Run(a.name+"/"+mode, func(t *testing.T) {
					k := newFlowKit(t, key, signer)
					loginFlow(t, k, a.make(k), mode)
				})
			}
		}
	})
	t.Run("discovery", func(t *testing.T) {
		for _, mode := range modes {
			t.Run(mode, func(t *testing.T) {
				discoveryFlow(t, newFlowKit(t, key, signer), mode)
			})
		}
	})
	t.Run("cli", func(t *testing.T) {
		cliFlows(t, key)
	})
}

// newSource returns a TokenSource for the hostile token endpoint of mode.
func (k *flowKit) newSource(t *testing.T, grant oauthclient.Grant, auth oauthclient.ClientAuth, mode string) *oauthclient.TokenSource {
	t.Helper()
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:      k.srv.URL + "/token/" + mode,
		RevocationURL: k.srv.URL + "/revoke/" + mode,
		ClientID:      clientID,
		Auth:          auth,
		Grant:         grant,
		Scopes:        []string{"system/Patient.rs"},
		Logger:        k.logger,
		HTTPClient:    k.srv.Client(),
		Retry:         fastRetry,
	})
	if err != nil {
		k.checkErr(t, "NewTokenSource", err)
		t.Fatal("NewTokenSource failed")
	}
	t.Cleanup(func() { ts.Close() })
	return ts
}

// tokenSourceFlow gets a token, then calls a resource (with an API gateway
// key in its query) that rejects the bearer token with a challenge
// echoing it.
func tokenSourceFlow(t *testing.T, k *flowKit, grant oauthclient.Grant, auth oauthclient.ClientAuth, mode string) {
	ts := k.newSource(t, grant, auth, mode)
	_, err := ts.Token(k.ctx)
	k.checkErr(t, "Token", err)
	if mode == modeOK200 && err != nil {
		t.Errorf("Token failed against a server that answered 200 with a token (%T)", err)
	}

	gatewayKey := k.secret("gateway key")
	resp, err := ts.Client(nil).Get(k.srv.URL + "/resource/" + mode + "?subscription-key=" + gatewayKey)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// net/http's *url.Error quotes the request URL the caller chose; what
	// the Transport returned must not show the gateway key either.
	k.checkErr(t, "Client.Get", err, "gateway key")
	var ue *url.Error
	if errors.As(err, &ue) {
		k.checkErr(t, "Transport.RoundTrip", ue.Err)
	}
	if err := ts.Close(); err != nil {
		k.checkErr(t, "Close", err)
	}
	k.checkDone(t)
}

// revokeFlow seeds a token pair and revokes it at the hostile revocation
// endpoint.
func revokeFlow(t *testing.T, k *flowKit, auth oauthclient.ClientAuth, mode string) {
	ts := k.newSource(t, oauthclient.RefreshToken{Token: k.secret("refresh token")}, auth, mode)
	err := ts.Seed(k.ctx, &oauth2.Token{
		AccessToken:  k.secret("access token"),
		RefreshToken: k.secret("refresh token (seeded)"),
		TokenType:    "Bearer",
		Expiry:       time.Now().Add(time.Hour),
	})
	k.checkErr(t, "Seed", err)
	k.checkErr(t, "Revoke", ts.Revoke(k.ctx))
	k.checkDone(t)
}

// loginFlow drives Login without a person: the browser hook follows the
// authorization URL's redirect_uri with a fresh code and the right state,
// then Login redeems the code at the hostile token endpoint.
func loginFlow(t *testing.T, k *flowKit, auth oauthclient.ClientAuth, mode string) {
	code := k.secret("authorization code")
	var out lockedBuffer
	opened := make(chan error, 1)
	_, err := oauthclient.Login(k.ctx, oauthclient.LoginConfig{
		AuthURL:    k.srv.URL + "/authorize",
		TokenURL:   k.srv.URL + "/token/" + mode,
		ClientID:   clientID,
		Auth:       auth,
		Scopes:     []string{"openid", "offline_access"},
		HTTPClient: k.srv.Client(),
		Out:        &out,
		OpenBrowser: func(authURL string) error {
			go func() { opened <- approve(k.ctx, authURL, code) }()
			return nil
		},
	})
	k.checkErr(t, "Login", err)
	k.book.check(t, "Login output", out.String())
	select {
	case err := <-opened:
		if err != nil {
			t.Errorf("following the redirect: %v", err)
		}
	case <-k.ctx.Done():
		t.Error("the browser hook was never called")
	}
	k.checkDone(t)
}

// approve plays an authorization server that approves at once: it sends
// the browser to the redirect URI with code and the request's state.
func approve(ctx context.Context, authURL, code string) error {
	u, err := url.Parse(authURL)
	if err != nil {
		return errors.New("authorization URL does not parse")
	}
	q := u.Query()
	cb, err := url.Parse(q.Get("redirect_uri"))
	if err != nil {
		return errors.New("redirect_uri does not parse")
	}
	cb.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cb.String(), nil)
	if err != nil {
		return errors.New("bad redirect request")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("redirect request failed (%T)", errors.Unwrap(err))
	}
	resp.Body.Close()
	return nil
}

// gatewayTransport adds an API gateway key header to every request, as
// callers do for discovery behind an API management layer.
type gatewayTransport struct{ key string }

func (g gatewayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Ocp-Apim-Subscription-Key", g.key)
	return http.DefaultTransport.RoundTrip(r)
}

// discoveryFlow runs SMART and RFC 8414 discovery with an HTTP client that
// sends a gateway key, which the server echoes into its answers.
func discoveryFlow(t *testing.T, k *flowKit, mode string) {
	hc := &http.Client{Transport: gatewayTransport{key: k.secret("gateway key")}}
	ctx := context.WithValue(k.ctx, oauth2.HTTPClient, hc)
	_, err := oauthclient.DiscoverSMART(ctx, k.srv.URL+"/fhir/"+mode)
	k.checkErr(t, "DiscoverSMART", err)
	_, err = oauthclient.DiscoverServer(ctx, k.srv.URL+"/iss/"+mode)
	k.checkErr(t, "DiscoverServer", err)
	k.checkDone(t)
}
