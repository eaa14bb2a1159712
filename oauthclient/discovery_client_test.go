package oauthclient_test

import (
	"context"
	"testing"

	"github.com/oauthkit/oauthkit/oauthclient"
	"github.com/oauthkit/oauthkit/oauthtest"
)

// TestDiscoverWithClient: the HTTP client is an argument; the caller's
// client is not modified, and the context-less default cannot reach a
// server whose certificate only that client trusts.
func TestDiscoverWithClient(t *testing.T) {
	srv := oauthtest.NewTLSServer()
	defer srv.Close()
	ctx := context.Background()
	hc := srv.HTTPClient()

	sc, err := oauthclient.DiscoverSMARTWithClient(ctx, hc, srv.FHIRBase())
	if err != nil {
		t.Fatal(err)
	}
	if sc.TokenEndpoint != srv.TokenURL() {
		t.Errorf("token_endpoint = %q, want %q", sc.TokenEndpoint, srv.TokenURL())
	}
	md, err := oauthclient.DiscoverServerWithClient(ctx, hc, srv.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	if md.TokenEndpoint != srv.TokenURL() {
		t.Errorf("metadata token_endpoint = %q, want %q", md.TokenEndpoint, srv.TokenURL())
	}
	if hc.CheckRedirect != nil {
		t.Error("discovery changed the caller's client")
	}
	if _, err := oauthclient.DiscoverSMART(ctx, srv.FHIRBase()); err == nil {
		t.Error("DiscoverSMART without the server's client trusted its certificate")
	}
	if _, err := oauthclient.DiscoverSMARTWithClient(ctx, nil, srv.FHIRBase()); err == nil {
		t.Error("DiscoverSMARTWithClient(nil) trusted the server's certificate")
	}
}
