package tokencache

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleEntries() []*Entry {
	return []*Entry{
		{AccessToken: "at-minimal"},
		{
			AccessToken:  "at-full",
			TokenType:    "Bearer",
			RefreshToken: "rt-full",
			Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC),
			Scope:        "system/Patient.rs openid",
			Extra: map[string]any{
				"issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
				"patient":           "123",
				"n":                 json.Number("42"),
				"nested":            map[string]any{"a": []any{"x", true, nil}},
			},
			Updated: time.Date(2029, 12, 31, 23, 0, 0, 0, time.UTC),
		},
		{RefreshToken: "rt-only", Expiry: time.Date(2031, 6, 1, 0, 0, 0, 0, time.FixedZone("x", 7200))},
		{AccessToken: "ünïcode \u2028 \"quoted\" <html>", TokenType: "DPoP"},
	}
}

// entriesEqual compares entries, times by instant.
func entriesEqual(a, b *Entry) bool {
	if a == nil || b == nil {
		return a == b
	}
	if !a.Expiry.Equal(b.Expiry) || !a.Updated.Equal(b.Updated) {
		return false
	}
	ac, bc := *a, *b
	ac.Expiry, bc.Expiry, ac.Updated, bc.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if len(ac.Extra) == 0 && len(bc.Extra) == 0 {
		ac.Extra, bc.Extra = nil, nil
	}
	return reflect.DeepEqual(ac, bc)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for i, e := range sampleEntries() {
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("entry %d: Encode: %v", i, err)
		}
		if !bytes.HasPrefix(b, []byte(`{"v":1,`)) {
			t.Errorf("entry %d: encoding does not start with the version", i)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("entry %d: Decode: %v", i, err)
		}
		if !entriesEqual(e, got) {
			t.Errorf("entry %d: round trip changed the entry: %v", i, got)
		}
		if !e.Expiry.IsZero() && got.Expiry.Location() != time.UTC {
			t.Errorf("entry %d: expiry not in UTC", i)
		}
	}
}

func TestEncodeFormat(t *testing.T) {
	e := &Entry{
		AccessToken: "at",
		TokenType:   "Bearer",
		Expiry:      time.Date(2030, 1, 2, 4, 4, 5, 500, time.FixedZone("", 3600)),
	}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"access_token":"at","token_type":"Bearer","expiry":"2030-01-02T03:04:05.0000005Z"}`
	if string(b) != want {
		t.Errorf("Encode = %s, want %s", b, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name string
		e    *Entry
	}{
		{"nil", nil},
		{"year out of range", &Entry{AccessToken: "secret-at", Expiry: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"negative year", &Entry{AccessToken: "secret-at", Updated: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"unencodable extra", &Entry{AccessToken: "secret-at", Extra: map[string]any{"c": make(chan int)}}},
		{"invalid number in extra", &Entry{AccessToken: "at", Extra: map[string]any{"n": json.Number("secret-at")}}},
		{"failing marshaler in extra", &Entry{AccessToken: "at", Extra: map[string]any{"m": failingMarshaler{}}}},
		{"too large", &Entry{AccessToken: strings.Repeat("a", MaxEncodedSize)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Encode(tt.e)
			if err == nil {
				t.Fatal("Encode succeeded")
			}
			if strings.Contains(err.Error(), "secret-at") || !strings.HasPrefix(err.Error(), "tokencache: ") {
				t.Errorf("bad error text (%d bytes)", len(err.Error()))
			}
		})
	}
}

// failingMarshaler fails with an error that quotes a secret.
type failingMarshaler struct{}

func (failingMarshaler) MarshalJSON() ([]byte, error) {
	return nil, errors.New("cannot marshal secret-at")
}

func TestDecodeRejects(t *testing.T) {
	good, err := Encode(sampleEntries()[1])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"spaces", "   "},
		{"not JSON", "access_token=secret-value-123"},
		{"array", `[{"v":1}]`},
		{"null", "null"},
		{"string", `"secret-value-123"`},
		{"truncated", string(good[:len(good)/2])},
		{"truncated by one", string(good[:len(good)-1])},
		{"no version", `{"access_token":"secret-value-123"}`},
		{"version 2", `{"v":2,"access_token":"secret-value-123"}`},
		{"version 0", `{"v":0,"access_token":"secret-value-123"}`},
		{"version float", `{"v":1.0,"access_token":"secret-value-123"}`},
		{"version string", `{"v":"1","access_token":"secret-value-123"}`},
		{"version 2 with other members", `{"v":2,"access_token":12345,"expiry":true}`},
		{"version null", `{"v":null,"access_token":"secret-value-123"}`},
		{"wrong type", `{"v":1,"access_token":12345}`},
		{"extra not object", `{"v":1,"access_token":"secret-value-123","extra":[1]}`},
		{"bad expiry", `{"v":1,"access_token":"secret-value-123","expiry":"secret-value-123"}`},
		{"expiry year wraps", `{"v":1,"access_token":"x","expiry":"0000-01-01T00:00:00+01:00"}`},
		{"trailing data", string(good) + `{"v":1}`},
		{"trailing junk", string(good) + "secret-value-123"},
		{"invalid character", `{"v":1,"access_token":"secret-value-123"x}`},
		{"oversize", `{"v":1,"access_token":"` + strings.Repeat("s", MaxEncodedSize) + `"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded: %v", e)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("error does not wrap ErrCorrupt: %v", err)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Errorf("error text contains the input")
			}
			if wantVersion := strings.Contains(tt.name, "version"); wantVersion != strings.Contains(err.Error(), "unsupported format version") {
				t.Errorf("error %q: reports an unsupported version = %v, want %v", err, !wantVersion, wantVersion)
			}
		})
	}
}

func TestDecodeIgnoresUnknownMembers(t *testing.T) {
	e, err := Decode([]byte(` {"v":1,"access_token":"at","future":{"x":1}} ` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	if e.AccessToken != "at" {
		t.Errorf("access token not decoded (%d bytes)", len(e.AccessToken))
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range sampleEntries() {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := Encode(bigNumberEntry()); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		`{"v":1,"extra":{"n":9007199254740993,"m":[-0.0,1e400,-12345678901234567890123.5e-7]}}`,
		"", "{", "{}", "null", `{"v":1}`, `{"v":2}`, `{"v":1,"extra":{"a":[1,2,{"b":null}]}}`,
		`{"v":1,"expiry":"9999-12-31T23:59:59.999999999-23:59"}`, `{"v":1,"access_token":"\ud800"}`,
		"\xff\xfe", `{"v":1,"extra":{"a":1},"extra":{"b":2}}`, `{"v":1,"updated":"2020-02-30T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			if len(in) >= 16 && strings.Contains(err.Error(), string(in)) {
				t.Fatal("error text contains the input")
			}
			return
		}
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode of a decoded entry: %v", err)
		}
		e2, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode of a re-encoded entry: %v", err)
		}
		if !entriesEqual(e, e2) {
			t.Fatal("Decode(Encode(e)) differs from e")
		}
		b2, err := Encode(e2)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable (err=%v)", err)
		}
	})
}
