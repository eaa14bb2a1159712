package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

const infoExample = `	# The cached token of a profile:
	oauthkit info -profile epic

	# A token from a pipe (a token given as an argument shows in the process list):
	oauthkit token -profile epic | oauthkit info -`

// maxInfoToken bounds a token read by info.
const maxInfoToken = 64 << 10

// tokenInfo is what info prints. It never holds the token itself.
type tokenInfo struct {
	// Source: "cache", "stdin" or "argument".
	Source    string `json:"source"`
	TokenType string `json:"token_type,omitempty"`
	// ExpiresAt is RFC 3339 in UTC: from the cache entry, else from the
	// JWT's exp claim.
	ExpiresAt string `json:"expires_at,omitempty"`
	// ExpiresIn is the rest of its lifetime, negative once expired.
	ExpiresIn string `json:"expires_in,omitempty"`
	Expired   bool   `json:"expired"`
	Scope     string `json:"scope,omitempty"`
	// RefreshToken: the cache entry holds a refresh token (cache only).
	RefreshToken *bool `json:"refresh_token,omitempty"`
	// JWT is the decoded header and claims when the access token is a JWT
	// (RFC 9068), unverified.
	JWT *jwtInfo `json:"jwt,omitempty"`
}

// jwtInfo is the decoded, unverified header and claims of a JWT.
type jwtInfo struct {
	Verified bool           `json:"verified"`
	Note     string         `json:"note"`
	Header   map[string]any `json:"header"`
	Claims   map[string]any `json:"claims"`
}

func runInfo(args []string, e *env) error {
	fs := newFlagSet("info", "[- | TOKEN | "+connSynopsis+"]", infoExample, e)
	cf := addConnFlags(fs, false)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	switch fs.NArg() {
	case 0:
		return infoCached(cf, e)
	case 1:
	default:
		return usagef("want at most one token (- for stdin)")
	}
	info := &tokenInfo{Source: "argument"}
	tok := fs.Arg(0)
	if tok == "-" {
		if e.stdin == nil {
			return usagef("no standard input")
		}
		b, err := io.ReadAll(io.LimitReader(e.stdin, maxInfoToken+1))
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if len(b) > maxInfoToken {
			return fmt.Errorf("standard input is larger than %d KiB; not a token", maxInfoToken>>10)
		}
		info.Source, tok = "stdin", strings.TrimSpace(string(b))
	}
	if tok == "" {
		return fmt.Errorf("empty token")
	}
	describeJWT(info, tok, time.Now())
	return printInfo(e, info)
}

// infoCached describes the token cached for the connection settings.
func infoCached(cf *connFlags, e *env) error {
	s, err := cf.settings(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	c, err := openCached(ctx, s, e, nil)
	if err != nil {
		return explain(ctx, err, s.timeout)
	}
	en, err := c.load(ctx)
	if err != nil {
		return explain(ctx, err, s.timeout)
	}
	if en == nil {
		return fmt.Errorf("no token cached in the %s for these settings", c.desc)
	}
	hasRefresh := en.RefreshToken != ""
	info := &tokenInfo{Source: "cache", TokenType: en.TokenType, Scope: en.Scope, RefreshToken: &hasRefresh}
	now := time.Now()
	if !en.Expiry.IsZero() {
		setExpiry(info, en.Expiry, now)
	}
	if en.AccessToken != "" {
		describeJWT(info, en.AccessToken, now)
	}
	return printInfo(e, info)
}

// describeJWT adds the decoded header and claims of tok to info when tok
// is a JWT, and the expiry and scope they give where info has none.
func describeJWT(info *tokenInfo, tok string, now time.Time) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return
	}
	j := &jwtInfo{Note: "decoded without checking the signature: do not trust these values"}
	if decodeSegment(parts[0], &j.Header) != nil || decodeSegment(parts[1], &j.Claims) != nil {
		return
	}
	info.JWT = j
	if exp, ok := j.Claims["exp"].(float64); ok && info.ExpiresAt == "" {
		setExpiry(info, time.Unix(int64(exp), 0), now)
	}
	if sc, ok := j.Claims["scope"].(string); ok && info.Scope == "" {
		info.Scope = sc
	}
}

func setExpiry(info *tokenInfo, exp, now time.Time) {
	info.ExpiresAt = exp.UTC().Format(time.RFC3339)
	info.ExpiresIn = exp.Sub(now).Truncate(time.Second).String()
	info.Expired = !exp.After(now)
}

func printInfo(e *env, info *tokenInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return fmt.Errorf("format token info: %w", err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}
