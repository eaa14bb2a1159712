package tokencache

import (
	"context"
	"encoding/json"
	"testing"
)

// bigNumberEntry has an integer in Extra that a float64 cannot hold
// (2^53 + 1), nested as well as at the top level.
func bigNumberEntry() *Entry {
	return &Entry{
		AccessToken: "at-number",
		Extra: map[string]any{
			"n":      json.Number("9007199254740993"),
			"nested": map[string]any{"list": []any{json.Number("-9007199254740995"), json.Number("0.5")}},
		},
	}
}

// checkBigNumbers reports whether e's Extra holds bigNumberEntry's numbers,
// as json.Number with the exact same text.
func checkBigNumbers(t *testing.T, e *Entry) {
	t.Helper()
	if e == nil {
		t.Fatal("nil entry")
	}
	n, ok := e.Extra["n"].(json.Number)
	if !ok {
		t.Fatalf(`Extra["n"] is a %T, want json.Number`, e.Extra["n"])
	}
	if n != "9007199254740993" {
		t.Errorf(`Extra["n"] = %s, want 9007199254740993`, n)
	}
	nested, ok := e.Extra["nested"].(map[string]any)
	if !ok {
		t.Fatalf(`Extra["nested"] is a %T`, e.Extra["nested"])
	}
	list, ok := nested["list"].([]any)
	if !ok || len(list) != 2 {
		t.Fatalf(`Extra["nested"]["list"] is a %T of the wrong length`, nested["list"])
	}
	for i, want := range []json.Number{"-9007199254740995", "0.5"} {
		if got, ok := list[i].(json.Number); !ok || got != want {
			t.Errorf("list[%d] = %v (%T), want json.Number %s", i, list[i], list[i], want)
		}
	}
}

func TestExtraNumbersKeepTypeAndValue(t *testing.T) {
	ctx := context.Background()
	t.Run("Encode and Decode", func(t *testing.T) {
		b, err := Encode(bigNumberEntry())
		if err != nil {
			t.Fatal(err)
		}
		e, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		checkBigNumbers(t, e)
	})
	t.Run("Clone", func(t *testing.T) {
		checkBigNumbers(t, bigNumberEntry().Clone())
	})
	caches := []struct {
		name string
		new  func(t *testing.T) Cache
	}{
		{"Memory", func(t *testing.T) Cache { return NewMemory() }},
		{"File", func(t *testing.T) Cache { return newTestFile(t) }},
	}
	for _, c := range caches {
		t.Run(c.name, func(t *testing.T) {
			cache := c.new(t)
			if err := cache.Store(ctx, "v1-n", bigNumberEntry()); err != nil {
				t.Fatal(err)
			}
			e, err := cache.Load(ctx, "v1-n")
			if err != nil {
				t.Fatal(err)
			}
			checkBigNumbers(t, e)
		})
	}
}
