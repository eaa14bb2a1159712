package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/oauthkit/oauthkit/oauthclient"
)

const getExample = `	oauthkit get -profile epic https://fhir.example.org/api/FHIR/R4/Patient?family=Smith

	oauthkit get -token-url https://auth.example.com/token -client-id abc -key key.pem \
		-scope system/Patient.rs https://fhir.example.com/fhir/Patient/p1 | jq .`

const requestExample = `	# FHIR Bulk Data: kick off an export; -i shows the Content-Location to poll.
	oauthkit request -profile epic -i -H 'Prefer: respond-async' \
		https://fhir.example.org/api/FHIR/R4/Group/g1/\$export

	# The same kick-off as a POST with a Parameters resource from a file:
	oauthkit request -profile epic -i -X POST -H 'Prefer: respond-async' \
		-H 'Content-Type: application/fhir+json' -d @params.json \
		https://fhir.example.org/api/FHIR/R4/Group/g1/\$export

	# A search by POST (form body read from stdin):
	echo '_id=p1' | oauthkit request -profile epic -d @- \
		https://fhir.example.org/api/FHIR/R4/Patient/_search`

// defaultAccept asks FHIR servers (which may default to XML) for JSON.
const defaultAccept = "application/fhir+json, application/json;q=0.9, */*;q=0.8"

// maxErrorBody is how much of a failed response's body is shown.
const maxErrorBody = 512

// maxRequestBody bounds a -d body.
const maxRequestBody = 256 << 20

// headerList is the repeatable -H flag. A bad value is kept as err rather
// than returned from Set: the flag package would quote the value, and a
// header may hold a credential.
type headerList struct {
	list []string
	err  error
}

func (h *headerList) String() string { return strings.Join(h.list, ", ") }

func (h *headerList) Set(v string) error {
	name, _, ok := strings.Cut(v, ":")
	switch {
	case h.err != nil:
	case !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t"):
		h.err = fmt.Errorf("want 'Name: value'; the %d bytes given are not that (not shown: they may hold a credential)", len(v))
	case strings.EqualFold(strings.TrimSpace(name), "Authorization"):
		h.err = errors.New("the Authorization header is oauthkit's to set")
	default:
		h.list = append(h.list, v)
	}
	return nil
}

// httpRequest is one request to send with a token.
type httpRequest struct {
	method  string
	target  string
	headers []string
	body    []byte // nil: no body
	include bool   // -i: print the status line and headers first
}

func runGet(args []string, e *env) error {
	fs := newFlagSet("get", connSynopsis+" URL", getExample, e)
	cf := addConnFlags(fs, false)
	accept := fs.String("accept", defaultAccept, "Accept header `value`")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one URL")
	}
	r := &httpRequest{method: http.MethodGet, target: fs.Arg(0)}
	if *accept != "" {
		r.headers = []string{"Accept: " + *accept}
	}
	return sendRequest(cf, e, r)
}

func runRequest(args []string, e *env) error {
	fs := newFlagSet("request", "[-X METHOD] [-H 'Name: value' …] [-d DATA|@FILE|@-] [-i] "+connSynopsis+" URL", requestExample, e)
	cf := addConnFlags(fs, false)
	method := fs.String("X", "", "request `method` (default GET, or POST with -d)")
	var headers headerList
	fs.Var(&headers, "H", "request `header` 'Name: value'; repeatable (default Accept: FHIR JSON)")
	data := fs.String("d", "", "request body: `DATA` as given, @FILE for a file's contents or @- for stdin (default Content-Type: application/x-www-form-urlencoded)")
	include := fs.Bool("i", false, "print the response status line and headers before the body")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if headers.err != nil {
		return usagef("-H: %v", headers.err)
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one URL")
	}
	r := &httpRequest{method: strings.ToUpper(*method), target: fs.Arg(0), headers: headers.list, include: *include}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["d"] {
		body, err := readBody(*data, e)
		if err != nil {
			return err
		}
		r.body = body
	}
	if r.method == "" {
		r.method = http.MethodGet
		if r.body != nil {
			r.method = http.MethodPost
		}
	}
	if !hasHeader(r.headers, "Accept") {
		r.headers = append(r.headers, "Accept: "+defaultAccept)
	}
	if r.body != nil && !hasHeader(r.headers, "Content-Type") {
		r.headers = append(r.headers, "Content-Type: application/x-www-form-urlencoded")
	}
	return sendRequest(cf, e, r)
}

// readBody returns the -d body: data itself, a file's contents (@FILE) or
// stdin (@-).
func readBody(data string, e *env) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	if !ok {
		return []byte(data), nil
	}
	var src io.Reader
	if name == "-" {
		src = e.stdin
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("-d: %w", err)
		}
		defer f.Close()
		src = f
	}
	if src == nil {
		return nil, usagef("-d @-: no standard input")
	}
	b, err := io.ReadAll(io.LimitReader(src, maxRequestBody+1))
	if err != nil {
		return nil, fmt.Errorf("-d %s: %w", data, err)
	}
	if len(b) > maxRequestBody {
		return nil, fmt.Errorf("-d %s: larger than %d MiB", data, maxRequestBody>>20)
	}
	return b, nil
}

// hasHeader reports whether headers ("Name: value") set name.
func hasHeader(headers []string, name string) bool {
	for _, h := range headers {
		if n, _, _ := strings.Cut(h, ":"); strings.EqualFold(strings.TrimSpace(n), name) {
			return true
		}
	}
	return false
}

// sendRequest sends r with a token and copies the response body to stdout
// (with -i, the status line and headers first). A response outside 2xx is
// an error that shows its status, WWW-Authenticate and the start of its
// body; with -i the whole response is printed as well.
func sendRequest(cf *connFlags, e *env, r *httpRequest) error {
	if u, err := url.Parse(r.target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usagef("%q is not an absolute http(s) URL", redactURL(r.target))
	}
	what := r.method + " " + redactURL(r.target)
	return withTokenSource(cf, e, func(ctx context.Context, ts *oauthclient.TokenSource) error {
		var body io.Reader
		if r.body != nil {
			body = bytes.NewReader(r.body) // replayable after a 401
		}
		req, err := http.NewRequestWithContext(ctx, r.method, r.target, body)
		if err != nil {
			return fmt.Errorf("%s: %w", what, withoutURL(err))
		}
		for _, h := range r.headers {
			name, value, _ := strings.Cut(h, ":")
			req.Header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
		resp, err := ts.Client(nil).Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", what, withoutURL(err))
		}
		defer resp.Body.Close()
		ok := resp.StatusCode >= 200 && resp.StatusCode <= 299
		if r.include {
			writeResponseHead(e.stdout, resp)
		}
		if !ok && !r.include {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			msg := fmt.Sprintf("%s: %s", what, resp.Status)
			if c := resp.Header.Get("WWW-Authenticate"); c != "" {
				msg += " (WWW-Authenticate: " + printable(c, 200) + ")"
			}
			if s := printable(string(b), maxErrorBody); s != "" {
				msg += ": " + s
			}
			return fmt.Errorf("%s", msg)
		}
		if _, err := io.Copy(e.stdout, resp.Body); err != nil {
			return fmt.Errorf("%s: read body: %w", what, withoutURL(err))
		}
		if !ok {
			return fmt.Errorf("%s: %s", what, resp.Status)
		}
		return nil
	})
}

// writeResponseHead prints the status line and the headers, sorted by
// name, then a blank line, as curl -i does.
func writeResponseHead(w io.Writer, resp *http.Response) {
	fmt.Fprintf(w, "%s %s\r\n", resp.Proto, resp.Status)
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	fmt.Fprint(w, "\r\n")
}
