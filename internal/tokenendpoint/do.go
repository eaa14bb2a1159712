package tokenendpoint

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Request is one token-endpoint call.
type Request struct {
	URL    string
	Form   url.Values
	Header http.Header // extra headers (Authorization for client_secret_basic)
}

// Response is a token-endpoint (or revocation-endpoint) answer, its body
// read through the MaxBodySize limit.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Post sends the form and reads the answer. The client should not follow
// redirects; a 3xx answer is an error wrapping ErrRedirect. Failures are
// *Error values (or ctx's error once ctx is done).
func Post(ctx context.Context, client *http.Client, r *Request) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, strings.NewReader(r.Form.Encode()))
	if err != nil {
		return nil, &Error{Err: fmt.Errorf("build request: %w", redactURLError(err))}
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
		return nil, &Error{Err: redactURLError(err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &Error{StatusCode: resp.StatusCode, Err: fmt.Errorf("read body: %w", redactURLError(err))}
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, &Error{StatusCode: resp.StatusCode, Err: ErrRedirect}
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// Do posts the form to the token endpoint and parses the answer as a token
// response. now is the clock used for Retry-After dates.
func Do(ctx context.Context, client *http.Client, r *Request, now func() time.Time) (*Token, error) {
	resp, err := Post(ctx, client, r)
	if err != nil {
		return nil, err
	}
	tok, err := Parse(resp.StatusCode, resp.Header.Get("Content-Type"), resp.Body)
	if e, ok := err.(*Error); ok && (resp.StatusCode == 429 || resp.StatusCode == 503) {
		e.RetryAfter = RetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return tok, err
}

// RetryAfter parses a Retry-After value: delay-seconds or an HTTP-date.
// It returns 0 when absent or invalid.
func RetryAfter(v string, now func() time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > 24*3600 {
			n = 24 * 3600
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now()); d > 0 {
			return d
		}
	}
	return 0
}

// redactURLError drops the query string from a *url.Error's URL.
func redactURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		c := *ue
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.Fragment, u.User = "", "", nil
			c.URL = u.String()
		}
		return &c
	}
	return err
}
