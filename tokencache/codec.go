package tokencache

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// FormatVersion is the version of the entry format written by Encode (the
// "v" member). Decode accepts only this version.
const FormatVersion = 1

// MaxEncodedSize is the largest encoded entry Decode accepts: 1 MiB.
const MaxEncodedSize = 1 << 20

// wireEntry is the JSON form of an Entry; see "Entry format" in the package
// documentation. Field order here is the order Encode writes.
type wireEntry struct {
	V            int            `json:"v"`
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type,omitempty"`
	RefreshToken string         `json:"refresh_token,omitempty"`
	Expiry       string         `json:"expiry,omitempty"`
	Scope        string         `json:"scope,omitempty"`
	Extra        map[string]any `json:"extra,omitempty"`
	Updated      string         `json:"updated,omitempty"`
	Thumbprint   string         `json:"jkt,omitempty"`
}

// Encode returns the versioned JSON encoding of e (see "Entry format" in the
// package documentation). Times are written in UTC with RFC 3339 and
// nanoseconds; zero times are omitted. It fails for a nil entry, for times
// outside the years 0000–9999 and for Extra values that JSON cannot encode.
// Errors never contain the entry's secrets.
func Encode(e *Entry) ([]byte, error) {
	if e == nil {
		return nil, errors.New("tokencache: encode entry: nil entry")
	}
	w := wireEntry{
		V:            FormatVersion,
		AccessToken:  e.AccessToken,
		TokenType:    e.TokenType,
		RefreshToken: e.RefreshToken,
		Scope:        e.Scope,
		Extra:        e.Extra,
		Thumbprint:   e.Thumbprint,
	}
	var err error
	if w.Expiry, err = formatTime(e.Expiry); err != nil {
		return nil, fmt.Errorf("tokencache: encode entry: expiry: %w", err)
	}
	if w.Updated, err = formatTime(e.Updated); err != nil {
		return nil, fmt.Errorf("tokencache: encode entry: updated: %w", err)
	}
	if len(w.Extra) == 0 {
		w.Extra = nil
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("tokencache: encode entry: extra: %w", marshalError(err))
	}
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("tokencache: encode entry: %d bytes is more than the %d-byte limit", len(b), MaxEncodedSize)
	}
	return b, nil
}

// marshalError returns err if its text cannot hold a value from Extra, and
// otherwise an error that says only what kind of value failed. Only Extra
// can make json.Marshal fail: an unsupported type, a non-finite number or a
// cycle (whose errors name a type or "+Inf"), an invalid json.Number (whose
// error quotes the string) or a failing Marshaler (whose error may say
// anything).
func marshalError(err error) error {
	var typ *json.UnsupportedTypeError
	var val *json.UnsupportedValueError
	switch {
	case errors.As(err, &typ), errors.As(err, &val):
		return err
	default:
		return errors.New("a value cannot be encoded as JSON (an invalid json.Number, or a failing MarshalJSON or MarshalText)")
	}
}

func formatTime(t time.Time) (string, error) {
	if t.IsZero() {
		return "", nil
	}
	u := t.UTC()
	if y := u.Year(); y < 0 || y > 9999 {
		return "", fmt.Errorf("year %d outside 0000-9999", y)
	}
	return u.Format(time.RFC3339Nano), nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s is not an RFC 3339 time", ErrCorrupt, name)
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, fmt.Errorf("%w: %s is outside the years 0000-9999", ErrCorrupt, name)
	}
	return t, nil
}

// Decode parses an entry written by Encode. Input that is not a single JSON
// object, is truncated, is larger than MaxEncodedSize, has a "v" other than
// FormatVersion or has members of the wrong type is rejected with an error
// wrapping ErrCorrupt. Members Decode does not know are ignored. Times are
// returned in UTC. Numbers in Extra, at any depth, are returned as
// json.Number, as the token endpoint's response decodes them, so that an
// entry keeps its types and exact values through a cache. Error text never
// contains the input.
func Decode(b []byte) (*Entry, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("tokencache: decode entry: %w: %d bytes is more than the %d-byte limit", ErrCorrupt, len(b), MaxEncodedSize)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("tokencache: decode entry: %w: empty", ErrCorrupt)
	}
	var w wireEntry
	if err := decodeStrict(b, &w); err != nil || w.V != FormatVersion {
		// Find the version alone, so that an unknown version is reported as
		// such even if its other members would not fit this version.
		var head struct {
			V json.RawMessage `json:"v"`
		}
		if err := decodeStrict(b, &head); err != nil {
			return nil, fmt.Errorf("tokencache: decode entry: %w", err)
		}
		if string(head.V) != "1" {
			return nil, fmt.Errorf("tokencache: decode entry: %w: unsupported format version (want %d)", ErrCorrupt, FormatVersion)
		}
		if err == nil {
			// Unreachable: "v" is exactly 1 yet did not decode as 1.
			err = fmt.Errorf("%w: unsupported format version (want %d)", ErrCorrupt, FormatVersion)
		}
		return nil, fmt.Errorf("tokencache: decode entry: %w", err)
	}
	e := &Entry{
		AccessToken:  w.AccessToken,
		TokenType:    w.TokenType,
		RefreshToken: w.RefreshToken,
		Scope:        w.Scope,
		Extra:        w.Extra,
		Thumbprint:   w.Thumbprint,
	}
	var err error
	if e.Expiry, err = parseTime("expiry", w.Expiry); err != nil {
		return nil, fmt.Errorf("tokencache: decode entry: %w", err)
	}
	if e.Updated, err = parseTime("updated", w.Updated); err != nil {
		return nil, fmt.Errorf("tokencache: decode entry: %w", err)
	}
	if len(e.Extra) == 0 {
		e.Extra = nil
	}
	return e, nil
}

// decodeStrict decodes exactly one JSON object from b into v. Its errors
// wrap ErrCorrupt and give offsets and field names, never input bytes (the
// errors of encoding/json quote input characters, so they are not wrapped).
func decodeStrict(b []byte, v any) error {
	if t := firstNonSpace(b); t != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrCorrupt)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return fmt.Errorf("%w: truncated JSON", ErrCorrupt)
		case errors.As(err, &syn):
			return fmt.Errorf("%w: invalid JSON at offset %d", ErrCorrupt, syn.Offset)
		case errors.As(err, &typ):
			return fmt.Errorf("%w: member %q has the wrong type", ErrCorrupt, typ.Field)
		default:
			return fmt.Errorf("%w: invalid JSON", ErrCorrupt)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON object", ErrCorrupt)
	}
	return nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return c
		}
	}
	return 0
}
