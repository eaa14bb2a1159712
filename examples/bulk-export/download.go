package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sync"

	"github.com/oauthkit/oauthkit/examples/internal/demo"
	"github.com/oauthkit/oauthkit/oauthclient"
)

// This file downloads the files of a completed export: NDJSON, one
// resource a line, streamed and counted, several files at once.

// downloadAll downloads every file of m with workers in parallel and
// prints one line per file, in the manifest's order.
func downloadAll(ctx context.Context, client *http.Client, m *manifest, workers int, out io.Writer) (counts, error) {
	type file struct{ kind, typ, url string }
	var files []file
	for _, g := range []struct {
		kind string
		list []entry
	}{{"", m.Output}, {"error ", m.Error}, {"deleted ", m.Deleted}} {
		for _, e := range g.list {
			files = append(files, file{g.kind, e.Type, e.URL})
		}
	}
	lines, errs := make([]int, len(files)), make([]error, len(files))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, len(files)) {
		wg.Go(func() {
			for i := range next {
				lines[i], errs[i] = download(ctx, client, files[i].url, files[i].typ)
			}
		})
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	var n counts
	for i, f := range files {
		if errs[i] != nil {
			return n, errs[i]
		}
		fmt.Fprintf(out, "%s%s: %d %s\n", f.kind, path.Base(redact(f.url)), lines[i], f.typ)
		switch f.kind {
		case "":
			n.files, n.resources = n.files+1, n.resources+lines[i]
		case "error ":
			n.errors += lines[i]
		default:
			n.deleted += lines[i]
		}
	}
	return n, nil
}

// download streams one NDJSON file and returns its number of resources,
// each of which must be of type typ.
func download(ctx context.Context, client *http.Client, u, typ string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, fmt.Errorf("file URL %q: %w", redact(u), oauthclient.RedactURLError(err))
	}
	resp, err := do(client, req, "application/fhir+ndjson")
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", redact(u), demo.StatusText(resp.StatusCode))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r struct{ ResourceType string }
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ResourceType != typ {
			return n, fmt.Errorf("%s line %d: not a %s resource", redact(u), n+1, typ)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("reading %s: %w", redact(u), oauthclient.RedactURLError(err))
	}
	return n, nil
}
