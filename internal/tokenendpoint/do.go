package tokenendpoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Request is one token-endpoint call. Its credentials (see Secrets) are
// redacted from every error that Post and Do return for it.
type Request struct {
	// URL is the endpoint.
	URL string
	// Form is the request body.
	Form url.Values
	// Header holds extra headers (Authorization for client_secret_basic,
	// DPoP).
	Header http.Header
}

// Response is a token-endpoint (or revocation-endpoint) answer, its body
// read through the MaxBodySize limit.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header holds the response headers.
	Header http.Header
	// Body is the response body, at most MaxBodySize+1 bytes.
	Body []byte

	red *redactor // the credentials of the request, for Parse
}

// Post sends the form and reads the answer. The client should not follow
// redirects; a 3xx answer is an error wrapping ErrRedirect. Failures are
// *Error values (or ctx's error once ctx is done), their text free of the
// request's credentials and of the URL's query.
func Post(ctx context.Context, client *http.Client, r *Request) (*Response, error) {
	rd := newRedactor(r.Secrets())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, strings.NewReader(r.Form.Encode()))
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("build request: %w", rd.wrap(RedactURLError(err)))}
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{Err: rd.wrap(RedactURLError(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{StatusCode: resp.StatusCode, Err: fmt.Errorf("read body: %w", rd.wrap(RedactURLError(err)))}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &Error{StatusCode: resp.StatusCode, Err: ErrRedirect}
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body, red: rd}, nil
}

// Do posts the form to the token endpoint and parses the answer as a token
// response (Response.Parse); now is the clock for Retry-After dates (nil:
// time.Now).
func Do(ctx context.Context, client *http.Client, r *Request, now func() time.Time) (*Token, error) {
	if now == nil {
		now = time.Now
	}
	resp, err := Post(ctx, client, r)
	if err != nil {
		return nil, err
	}
	return resp.Parse(now())
}
