package tokencache

import (
	"reflect"
	"testing"
	"time"
)

func TestEntryCloneIsDeep(t *testing.T) {
	newEntry := func() *Entry {
		return &Entry{
			AccessToken:  "at",
			TokenType:    "Bearer",
			RefreshToken: "rt",
			Expiry:       time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
			Scope:        "a b",
			Extra: map[string]any{
				"nested":  map[string]any{"a": "1", "deeper": map[string]any{"b": []any{"x", map[string]any{"c": 1.0}}}},
				"list":    []any{"x", []any{"y"}},
				"strings": []string{"s1", "s2"},
				"empty":   []any{},
				"nilmap":  map[string]any(nil),
				"nillist": []any(nil),
				"number":  2.0,
			},
			Updated: time.Date(2029, 1, 2, 3, 4, 5, 0, time.UTC),
		}
	}
	e := newEntry()
	c := e.Clone()
	if !reflect.DeepEqual(c, e) {
		t.Fatalf("Clone = %#v, want a copy of %#v", c, e)
	}
	if c.Extra["nilmap"].(map[string]any) != nil || c.Extra["nillist"].([]any) != nil || c.Extra["empty"].([]any) == nil {
		t.Error("Clone changed whether a map or slice is nil")
	}
	// Change the clone at every depth; the original must not change.
	c.Extra["new"] = true
	nested := c.Extra["nested"].(map[string]any)
	nested["a"] = "changed"
	deeper := nested["deeper"].(map[string]any)
	deeper["added"] = true
	deeper["b"].([]any)[0] = "changed"
	deeper["b"].([]any)[1].(map[string]any)["c"] = 9.0
	c.Extra["list"].([]any)[1].([]any)[0] = "changed"
	c.Extra["strings"].([]string)[0] = "changed"
	if !reflect.DeepEqual(e, newEntry()) {
		t.Errorf("changing the clone changed the original: %#v", e.Extra)
	}
	if (*Entry)(nil).Clone() != nil {
		t.Error("Clone of nil is not nil")
	}
	if c := (&Entry{AccessToken: "at"}).Clone(); c.Extra != nil {
		t.Error("Clone made a nil Extra non-nil")
	}
}
