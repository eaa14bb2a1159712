package interop

import (
	"context"
	"fmt"
	"net/http"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// A TokenSource replaces a rejected token at once only if the token worked
// before (a resource server accepted it): a token rejected moments after it
// was fetched, without ever working, is replaced on the backoff schedule,
// so that a resource server that rejects every token cannot drive the
// token endpoint at the caller's request rate. The tests that force
// rotations therefore use each token once before they reject it.

// acceptedURL is the resource acceptAll serves; nothing is dialled.
const acceptedURL = "https://resource.interop.test/Patient"

// acceptAll is a resource server that accepts every request.
type acceptAll struct{}

func (acceptAll) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
		Request:    req,
	}, nil
}

// rejectCurrent makes ts drop its current token as a resource server that
// revokes a working token does: it gets the token, uses it once with
// acceptAll, then reports it rejected. The next Token call refreshes, or
// adopts a newer token another process stored.
func rejectCurrent(ctx context.Context, ts *oauthclient.TokenSource) error {
	tok, err := ts.Token(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, acceptedURL, nil)
	if err != nil {
		return err
	}
	resp, err := ts.Client(&http.Client{Transport: acceptAll{}}).Do(req)
	if err != nil {
		return fmt.Errorf("use the token: %w", err)
	}
	_ = resp.Body.Close()
	ts.Invalidate(tok)
	return nil
}

// forceRefresh makes ts redeem the refresh token in its cache at least once:
// it takes the current token (perhaps adopted from the cache), rejects it
// and asks again.
func forceRefresh(ctx context.Context, ts *oauthclient.TokenSource) error {
	if err := rejectCurrent(ctx, ts); err != nil {
		return err
	}
	_, err := ts.Token(ctx)
	return err
}
