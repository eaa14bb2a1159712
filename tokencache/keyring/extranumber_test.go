package keyring

import (
	"context"
	"encoding/json"
	"testing"
)

// An integer above 2^53 in Extra comes back from the keychain as the same
// json.Number, whether the entry fits in one item or is chunked.
func TestExtraNumbersKeepTypeAndValue(t *testing.T) {
	ctx := context.Background()
	for _, idToken := range []int{0, 20000} {
		c, _ := newTestCache(t, 2000, 0)
		e := bigEntry(idToken)
		if idToken == 0 {
			e.Extra = map[string]any{}
		}
		e.Extra["n"] = json.Number("9007199254740993")
		if err := c.Store(ctx, "v1-n", e); err != nil {
			t.Fatal(err)
		}
		got, err := c.Load(ctx, "v1-n")
		if err != nil {
			t.Fatal(err)
		}
		n, ok := got.Extra["n"].(json.Number)
		if !ok || n != "9007199254740993" {
			t.Errorf("id_token of %d bytes: Extra[\"n\"] = %v (%T), want json.Number 9007199254740993", idToken, got.Extra["n"], got.Extra["n"])
		}
	}
}
