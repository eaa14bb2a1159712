package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// maxBodySize bounds the FHIR response read.
const maxBodySize = 32 << 20

// Get GETs url as FHIR JSON and returns the response status. The body is
// read (to reuse the connection) and dropped.
func Get(ctx context.Context, client *http.Client, url string) (status int, err error) {
	return get(ctx, client, url, nil)
}

// GetPatients GETs url and counts the Patient resources of the search
// Bundle (or 1 for a single Patient) in a 200 answer.
func GetPatients(ctx context.Context, client *http.Client, url string) (status, patients int, err error) {
	var body struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
			} `json:"resource"`
		} `json:"entry"`
	}
	status, err = get(ctx, client, url, &body)
	if err != nil || status != http.StatusOK {
		return status, 0, err
	}
	if body.ResourceType == "Patient" {
		return status, 1, nil
	}
	for _, e := range body.Entry {
		if e.Resource.ResourceType == "Patient" {
			patients++
		}
	}
	return status, patients, nil
}

// get GETs url as FHIR JSON. A 200 answer is decoded into v, or dropped if
// v is nil; any other answer is dropped.
func get(ctx context.Context, client *http.Client, url string, v any) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/fhir+json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxBodySize)
	switch {
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, body)
	case v == nil:
		_, err = io.Copy(io.Discard, body)
	default:
		err = json.NewDecoder(body).Decode(v)
	}
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading the FHIR response: %w", err)
	}
	return resp.StatusCode, nil
}

// Sleep waits for d or until ctx is done, and returns ctx's error then.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
