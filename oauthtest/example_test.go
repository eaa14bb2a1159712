package oauthtest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/oauthkit/oauthkit/oauthtest"
)

// A client_credentials request with client_secret_basic, made with plain
// net/http, then a call to the protected resource with the token.
func Example() {
	srv := oauthtest.NewServer()
	defer srv.Close()
	err := srv.RegisterClient(oauthtest.Client{
		ID:         "my-service",
		Secret:     "s3cret/+",
		AuthMethod: oauthtest.AuthClientSecretBasic,
		Scopes:     []string{"system/Patient.rs"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}

	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"system/Patient.rs"}}
	req, _ := http.NewRequest(http.MethodPost, srv.TokenURL(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// RFC 6749 §2.3.1: form-encode the client ID and secret before Basic.
	req.SetBasicAuth(url.QueryEscape("my-service"), url.QueryEscape("s3cret/+"))
	resp, err := srv.HTTPClient().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		Scope       string `json:"scope"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("token endpoint:", resp.StatusCode, tok.TokenType, tok.ExpiresIn, tok.Scope)

	req, _ = http.NewRequest(http.MethodGet, srv.FHIRBase()+"/Patient", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	res, err := srv.HTTPClient().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	res.Body.Close()
	fmt.Println("resource:", res.StatusCode, res.Header.Get("Content-Type"))
	fmt.Println("token requests:", srv.Stats().TokenRequests)
	// Output:
	// token endpoint: 200 Bearer 3600 system/Patient.rs
	// resource: 200 application/fhir+json
	// token requests: 1
}
