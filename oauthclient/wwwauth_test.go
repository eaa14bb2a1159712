package oauthclient

import (
	"reflect"
	"testing"
)

func TestParseWWWAuthenticate(t *testing.T) {
	tests := []struct {
		in   []string
		want []Challenge
	}{
		{[]string{`Bearer`}, []Challenge{{Scheme: "Bearer"}}},
		{[]string{`Bearer realm="example"`}, []Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": "example"}}}},
		{[]string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
			[]Challenge{{Scheme: "Bearer", Params: map[string]string{"realm": "example", "error": "invalid_token", "error_description": "The access token expired"}}}},
		{[]string{`bearer ERROR=invalid_token`}, []Challenge{{Scheme: "bearer", Params: map[string]string{"error": "invalid_token"}}}},
		{[]string{`Bearer error="a, b=\"c\"", scope="x y"`}, []Challenge{{Scheme: "Bearer", Params: map[string]string{"error": `a, b="c"`, "scope": "x y"}}}},
		{[]string{`DPoP algs="ES256 PS256", error="use_dpop_nonce", Bearer realm="r", error="invalid_token"`},
			[]Challenge{{Scheme: "DPoP", Params: map[string]string{"algs": "ES256 PS256", "error": "use_dpop_nonce"}}, {Scheme: "Bearer", Params: map[string]string{"realm": "r", "error": "invalid_token"}}}},
		{[]string{`Basic realm="x"`, `Bearer error="invalid_token"`},
			[]Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "x"}}, {Scheme: "Bearer", Params: map[string]string{"error": "invalid_token"}}}},
		{[]string{`Negotiate abc123==, Bearer`}, []Challenge{{Scheme: "Negotiate", Token68: "abc123=="}, {Scheme: "Bearer"}}},
		{[]string{`Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple"`},
			[]Challenge{{Scheme: "Newauth", Params: map[string]string{"realm": "apps", "type": "1", "title": `Login to "apps"`}}, {Scheme: "Basic", Params: map[string]string{"realm": "simple"}}}},
		{[]string{`Bearer error="unterminated`}, []Challenge{{Scheme: "Bearer", Params: map[string]string{"error": "unterminated"}}}},
		{[]string{`, , Bearer ,`}, []Challenge{{Scheme: "Bearer"}}},
		{[]string{`"junk", Bearer error=invalid_token`}, []Challenge{{Scheme: "Bearer", Params: map[string]string{"error": "invalid_token"}}}},
		{[]string{``}, nil},
	}
	for _, tt := range tests {
		got := ParseWWWAuthenticate(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseWWWAuthenticate(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseWWWAuthenticate(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="example", error="invalid_token", error_description="expired"`,
		`DPoP algs="ES256", Bearer error="insufficient_scope", scope="a b"`,
		`Negotiate abc==, Basic realm="x"`,
		`Bearer error="a\"b`, `,,,`, `=`, `Bearer ==`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range ParseWWWAuthenticate([]string{s}) {
			if c.Scheme == "" {
				t.Fatal("challenge without scheme")
			}
		}
	})
}
