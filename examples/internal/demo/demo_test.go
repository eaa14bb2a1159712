package demo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGetPatients(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		wantPatients int
		wantErr      bool
	}{
		{"bundle", 200, `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient"}},{"resource":{"resourceType":"OperationOutcome"}},{"resource":{"resourceType":"Patient"}}]}`, 2, false},
		{"single patient", 200, `{"resourceType":"Patient","id":"p1"}`, 1, false},
		{"empty bundle", 200, `{"resourceType":"Bundle"}`, 0, false},
		{"forbidden", 403, `{"resourceType":"OperationOutcome"}`, 0, false},
		{"not JSON", 200, `<html>`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if got := r.Header.Get("Accept"); got != "application/fhir+json" {
					t.Errorf("Accept %q", got)
				}
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			status, patients, err := GetPatients(context.Background(), srv.Client(), srv.URL+"/Patient")
			if status != tt.status || patients != tt.wantPatients || (err != nil) != tt.wantErr {
				t.Errorf("GetPatients = %d, %d, %v; want %d, %d, error %t", status, patients, err, tt.status, tt.wantPatients, tt.wantErr)
			}
			status, err = Get(context.Background(), srv.Client(), srv.URL+"/Patient")
			if status != tt.status || err != nil {
				t.Errorf("Get = %d, %v; want %d, nil", status, err, tt.status)
			}
		})
	}
}

func TestConnection(t *testing.T) {
	full := Connection{FHIRBase: "https://fhir.example.org/R4/", ClientID: "app", KeyFile: "k.pem", KeyID: "k1", Path: "/Patient?family=Smith"}
	tests := []struct {
		name    string
		edit    func(*Connection)
		wantErr string // "" for none
	}{
		{"complete", func(*Connection) {}, ""},
		{"embedded server", func(c *Connection) { *c = Connection{} }, ""},
		{"no client ID", func(c *Connection) { c.ClientID = "" }, "-client-id"},
		{"no key", func(c *Connection) { c.KeyFile = "" }, "-key"},
		{"no key ID", func(c *Connection) { c.KeyID = "" }, "-kid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full
			tt.edit(&c)
			err := c.Check()
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("Check() = %v, want an error naming %q", err, tt.wantErr)
			}
		})
	}
	if got, want := full.URL(), "https://fhir.example.org/R4/Patient?family=Smith"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
}

func TestPlural(t *testing.T) {
	tests := []struct {
		n    int
		want string
	}{{0, "requests"}, {1, "request"}, {2, "requests"}}
	for _, tt := range tests {
		if got := Plural(tt.n, "request", "requests"); got != tt.want {
			t.Errorf("Plural(%d) = %q, want %q", tt.n, got, tt.want)
		}
		if got := Plural(int64(tt.n), "request", "requests"); got != tt.want {
			t.Errorf("Plural(int64(%d)) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
