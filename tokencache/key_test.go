package tokencache

import (
	"strings"
	"testing"
)

func baseParts() KeyParts {
	return KeyParts{
		TokenURL: "https://fhir.example.org/oauth2/token",
		ClientID: "client-1",
		Grant:    "client_credentials",
		Scopes:   []string{"system/Patient.rs", "system/Observation.rs"},
		Audience: []string{"https://a.example", "https://b.example"},
		Resource: []string{"https://r1.example", "https://r2.example"},
		Subject:  "user-1",
		Extra:    "profile-1",
	}
}

func TestKeyFormat(t *testing.T) {
	k := Key(baseParts())
	if !strings.HasPrefix(k, "v1-") || len(k) != 3+64 {
		t.Errorf("Key = %q, want v1- and 64 hex digits", k)
	}
	if err := ValidateKey(k); err != nil {
		t.Errorf("Key is not a valid key: %v", err)
	}
	if Key(baseParts()) != k {
		t.Error("Key is not deterministic")
	}
	if Key(KeyParts{}) == k || ValidateKey(Key(KeyParts{})) != nil {
		t.Error("zero KeyParts: bad key")
	}
}

func TestKeyIgnoresOrderAndDuplicates(t *testing.T) {
	want := Key(baseParts())
	tests := []struct {
		name   string
		modify func(p *KeyParts)
	}{
		{"scopes reversed", func(p *KeyParts) { p.Scopes = []string{"system/Observation.rs", "system/Patient.rs"} }},
		{"scopes duplicated", func(p *KeyParts) { p.Scopes = append(p.Scopes, "system/Patient.rs") }},
		{"audience reversed", func(p *KeyParts) { p.Audience = []string{"https://b.example", "https://a.example"} }},
		{"resource duplicated", func(p *KeyParts) { p.Resource = append(p.Resource, p.Resource...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParts()
			tt.modify(&p)
			if got := Key(p); got != want {
				t.Errorf("key changed: %s != %s", got, want)
			}
		})
	}
	// Key must not reorder the caller's slice.
	p := baseParts()
	Key(p)
	if p.Scopes[0] != "system/Patient.rs" {
		t.Error("Key modified the caller's Scopes")
	}
}

func TestKeyEveryFieldMatters(t *testing.T) {
	base := Key(baseParts())
	tests := []struct {
		name   string
		modify func(p *KeyParts)
	}{
		{"token URL", func(p *KeyParts) { p.TokenURL += "2" }},
		{"client ID", func(p *KeyParts) { p.ClientID = "client-2" }},
		{"grant", func(p *KeyParts) { p.Grant = "refresh_token" }},
		{"scope added", func(p *KeyParts) { p.Scopes = append(p.Scopes, "openid") }},
		{"scope removed", func(p *KeyParts) { p.Scopes = p.Scopes[:1] }},
		{"scopes joined", func(p *KeyParts) { p.Scopes = []string{"system/Patient.rs system/Observation.rs"} }},
		{"scope moved to audience", func(p *KeyParts) {
			p.Audience = append(p.Audience, p.Scopes[0])
			p.Scopes = p.Scopes[1:]
		}},
		{"audience", func(p *KeyParts) { p.Audience = nil }},
		{"resource", func(p *KeyParts) { p.Resource = p.Resource[1:] }},
		{"subject", func(p *KeyParts) { p.Subject = "user-2" }},
		{"extra", func(p *KeyParts) { p.Extra = "" }},
		{"field boundary", func(p *KeyParts) {
			p.ClientID, p.Grant = p.ClientID+p.Grant[:6], p.Grant[6:]
		}},
	}
	seen := map[string]string{base: "base"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParts()
			tt.modify(&p)
			k := Key(p)
			if prev, ok := seen[k]; ok {
				t.Errorf("same key as %q", prev)
			}
			seen[k] = tt.name
		})
	}
	// Concatenation ambiguity: "a b"+"c" and "a"+"b c".
	a := Key(KeyParts{Scopes: []string{"a b", "c"}})
	b := Key(KeyParts{Scopes: []string{"a", "b c"}})
	if a == b {
		t.Error(`scopes {"a b","c"} and {"a","b c"} share a key`)
	}
}

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key string
		ok  bool
	}{
		{"v1-abc", true},
		{"A.b_c-9", true},
		{"", false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{`a\b`, false},
		{"../etc/passwd", false},
		{"a b", false},
		{"a#1", false},
		{"a\x00b", false},
		{"é", false},
		{strings.Repeat("k", 200), true},
		{strings.Repeat("k", 201), false},
	}
	for _, tt := range tests {
		err := ValidateKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
	}
}
