package oauthclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthkit/oauthkit/jwtassert"
	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
	"github.com/oauthkit/oauthkit/tokencache"
)

// exampleSigner generates a key, as `oauthkit keygen` would.
func exampleSigner(alg, kid string) *jwtassert.Signer {
	key, err := jwtassert.GenerateKey(alg)
	if err != nil {
		log.Fatal(err)
	}
	s, err := jwtassert.NewSigner(key, jwtassert.Options{KeyID: kid})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

func mustRegister(srv *oauthtest.Server, c oauthtest.Client) {
	if err := srv.RegisterClient(c); err != nil {
		log.Fatal(err)
	}
}

func getPatients(client *http.Client, srv *oauthtest.Server) string {
	resp, err := client.Get(srv.FHIRBase() + "/Patient")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Status
}

// SMART Backend Services: client credentials with private_key_jwt, the
// token endpoint found by SMART discovery.
func Example_backendServices() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	signer := exampleSigner("RS384", "key-1")
	jwks, _ := jwtassert.JWKS(signer) // what Epic's "JWK Set URL" serves
	mustRegister(srv, oauthtest.Client{ID: "backend-app", JWKS: jwks, AuthMethod: oauthtest.AuthPrivateKeyJWT})

	ctx := context.Background()
	smart, err := oauthclient.DiscoverSMART(ctx, srv.FHIRBase())
	if err != nil {
		log.Fatal(err)
	}
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: smart.TokenEndpoint,
		ClientID: "backend-app",
		Auth:     oauthclient.PrivateKeyJWT{Signer: signer},
		Scopes:   []string{"system/Patient.rs"},
	})
	if err != nil {
		log.Fatal(err)
	}
	client := ts.Client(nil)
	for i := 0; i < 3; i++ {
		fmt.Println(getPatients(client, srv))
	}
	fmt.Println("token requests:", srv.Stats().TokenRequests)
	// Output:
	// 200 OK
	// 200 OK
	// 200 OK
	// token requests: 1
}

// A client secret sent with HTTP Basic authentication.
func Example_clientSecret() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "engine", Secret: "s3cret", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "engine",
		Auth:     oauthclient.ClientSecretBasic{Secret: "s3cret"},
	})
	tok, err := ts.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.TokenType, tok.Valid())
	// Output: Bearer true
}

// The JWT bearer grant (RFC 7523 §2.1): a token for a named subject.
func Example_jwtBearer() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	signer := exampleSigner("ES384", "jb-1")
	jwks, _ := jwtassert.JWKS(signer)
	mustRegister(srv, oauthtest.Client{ID: "integration", JWKS: jwks, AuthMethod: oauthtest.AuthPrivateKeyJWT})
	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "integration",
		Auth:     oauthclient.PrivateKeyJWT{Signer: signer},
		Grant:    oauthclient.JWTBearer{Signer: signer, Subject: "practitioner-7"},
	})
	fmt.Println(getPatients(ts.Client(nil), srv))
	fmt.Println("jwt-bearer requests:", srv.Stats().ByGrant[oauthclient.GrantTypeJWTBearer])
	// Output:
	// 200 OK
	// jwt-bearer requests: 1
}

// A rotating refresh token: each new one is stored in the cache, then
// passed to OnTokenChange, before the access token is used.
func Example_refreshToken() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "tool", AuthMethod: oauthtest.AuthNone})
	rt, _ := srv.IssueRefreshToken("tool", "alice", []string{"patient/Patient.rs"})

	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "tool",
		Grant:    oauthclient.RefreshToken{Token: rt},
		Cache:    tokencache.NewMemory(),
		OnTokenChange: func(tok *oauth2.Token) {
			fmt.Println("new refresh token:", tok.RefreshToken != "" && tok.RefreshToken != rt)
		},
	})
	fmt.Println(getPatients(ts.Client(nil), srv))
	// Output:
	// new refresh token: true
	// 200 OK
}

// Token exchange (RFC 8693): trade one token for a token for another audience.
func Example_tokenExchange() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "ehr-launch", Secret: "a", AuthMethod: oauthtest.AuthClientSecretBasic})
	mustRegister(srv, oauthtest.Client{ID: "backend", Secret: "b", AuthMethod: oauthtest.AuthClientSecretBasic})
	subject, _ := oauthclient.NewTokenSource(oauthclient.Config{TokenURL: srv.TokenURL(), ClientID: "ehr-launch", Auth: oauthclient.ClientSecretBasic{Secret: "a"}})

	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "backend",
		Auth:     oauthclient.ClientSecretBasic{Secret: "b"},
		Grant:    oauthclient.TokenExchange{SubjectSource: subject, Audience: []string{srv.FHIRBase()}},
	})
	tok, err := ts.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tok.Extra("issued_token_type"))
	// Output: urn:ietf:params:oauth:token-type:access_token
}

// The legacy password grant, for servers that offer nothing else.
func Example_password() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	srv.AddUser("alice", "correct horse")
	mustRegister(srv, oauthtest.Client{ID: "legacy", Secret: "s", AuthMethod: oauthtest.AuthClientSecretPost})
	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "legacy",
		Auth:     oauthclient.ClientSecretPost{Secret: "s"},
		Grant:    oauthclient.Password{Username: "alice", Password: "correct horse"},
	})
	fmt.Println(getPatients(ts.Client(nil), srv))
	// Output: 200 OK
}

// A long-lived token obtained elsewhere, through the same Transport.
func ExampleNewStatic() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "notifier", Secret: "n", AuthMethod: oauthtest.AuthClientSecretBasic})
	issuer, _ := oauthclient.NewTokenSource(oauthclient.Config{TokenURL: srv.TokenURL(), ClientID: "notifier", Auth: oauthclient.ClientSecretBasic{Secret: "n"}})
	tok, _ := issuer.Token(context.Background())

	static, err := oauthclient.NewStatic(tok.AccessToken)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(getPatients(static.Client(nil), srv))
	// Output: 200 OK
}

// Errors are typed: branch on the OAuth error code with errors.As.
func ExampleTokenError() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "engine", Secret: "right", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts, _ := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "engine",
		Auth:     oauthclient.ClientSecretBasic{Secret: "wrong"},
	})
	_, err := ts.Token(context.Background())
	var te *oauthclient.TokenError
	if errors.As(err, &te) {
		fmt.Println(te.StatusCode, te.ErrorCode, te.Temporary())
	}
	// Output: 401 invalid_client false
}

// The cron case: a second process finds the token the first one stored.
func ExampleConfig_cache() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "cron", Secret: "c", AuthMethod: oauthtest.AuthClientSecretBasic})
	dir, err := os.MkdirTemp("", "oauthkit-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for run := 1; run <= 3; run++ {
		cache, err := tokencache.NewFile(dir)
		if err != nil {
			log.Fatal(err)
		}
		ts, _ := oauthclient.NewTokenSource(oauthclient.Config{TokenURL: srv.TokenURL(), ClientID: "cron", Auth: oauthclient.ClientSecretBasic{Secret: "c"}, Cache: cache})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := ts.Token(ctx); err != nil {
			log.Fatal(err)
		}
		cancel()
		fmt.Printf("run %d: token requests so far: %d\n", run, srv.Stats().TokenRequests)
	}
	// Output:
	// run 1: token requests so far: 1
	// run 2: token requests so far: 1
	// run 3: token requests so far: 1
}

// Log a person in (authorization code + PKCE through a loopback redirect),
// then keep the access token fresh with the refresh token. Here the
// "browser" is a plain HTTP GET, which oauthtest approves at once.
func ExampleLogin() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "cli-tool", AuthMethod: oauthtest.AuthNone,
		RedirectURIs: []string{"http://127.0.0.1/callback"}})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := oauthclient.Login(ctx, oauthclient.LoginConfig{
		AuthURL:  srv.AuthorizeURL(),
		TokenURL: srv.TokenURL(),
		ClientID: "cli-tool",
		Scopes:   []string{"openid", "offline_access", "patient/Patient.rs"},
		Out:      io.Discard, // default: instructions on stderr
		OpenBrowser: func(authURL string) error {
			resp, err := http.Get(authURL) // a person's browser, in real life
			if err == nil {
				resp.Body.Close()
			}
			return err
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("refresh token received:", tok.RefreshToken != "")

	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL: srv.TokenURL(),
		ClientID: "cli-tool",
		Grant:    oauthclient.RefreshToken{},
		Cache:    tokencache.NewMemory(), // tokencache/keyring in a real tool
		CacheKey: "cli-tool/alice",       // whose token it is
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := ts.Seed(ctx, tok); err != nil {
		log.Fatal(err)
	}
	fmt.Println(getPatients(ts.Client(nil), srv))
	// Output:
	// refresh token received: true
	// 200 OK
}

// A Transport over any Source, for an http.Client built elsewhere.
func ExampleTransport() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "engine", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{TokenURL: srv.TokenURL(), ClientID: "engine", Auth: oauthclient.ClientSecretBasic{Secret: "s"}})
	if err != nil {
		log.Fatal(err)
	}
	client := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &oauthclient.Transport{Source: ts, Base: http.DefaultTransport},
	}
	fmt.Println(getPatients(client, srv))
	fmt.Println("token requests:", srv.Stats().TokenRequests)
	// Output:
	// 200 OK
	// token requests: 1
}

// Revoke the refresh token at the end of a session (RFC 7009): the token is
// dropped from memory and from the cache too.
func ExampleTokenSource_Revoke() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "app", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic})
	ctx := context.Background()
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{
		TokenURL:      srv.TokenURL(),
		RevocationURL: srv.RevocationURL(),
		ClientID:      "app",
		Auth:          oauthclient.ClientSecretBasic{Secret: "s"},
	})
	if err != nil {
		log.Fatal(err)
	}
	tok, err := ts.Token(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if err := ts.Revoke(ctx); err != nil {
		log.Fatal(err)
	}
	static, _ := oauthclient.NewStatic(tok.AccessToken) // the revoked token, sent anyway
	fmt.Println("revoked token:", getPatients(static.Client(nil), srv))
	// Output:
	// revoked token: 401 Unauthorized
}

// Hand the source to code that takes an oauth2.TokenSource, and the other
// way round.
func ExampleTokenSource_OAuth2() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	mustRegister(srv, oauthtest.Client{ID: "engine", Secret: "s", AuthMethod: oauthtest.AuthClientSecretBasic})
	ts, err := oauthclient.NewTokenSource(oauthclient.Config{TokenURL: srv.TokenURL(), ClientID: "engine", Auth: oauthclient.ClientSecretBasic{Secret: "s"}})
	if err != nil {
		log.Fatal(err)
	}
	var legacy oauth2.TokenSource = ts.OAuth2()
	client := oauth2.NewClient(context.Background(), legacy) // x/oauth2's own Transport
	fmt.Println(getPatients(client, srv))

	// FromOAuth2 goes back: any oauth2.TokenSource feeds a Transport.
	fmt.Println(getPatients(&http.Client{Transport: &oauthclient.Transport{Source: oauthclient.FromOAuth2(legacy)}}, srv))
	fmt.Println("token requests:", srv.Stats().TokenRequests)
	// Output:
	// 200 OK
	// 200 OK
	// token requests: 1
}
