package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// tidyHandler is the -v log handler: it drops attributes whose value is
// an empty string and a line that repeats the one before it (the cache is
// consulted twice on a miss: before and after taking its lock).
type tidyHandler struct {
	next  slog.Handler
	state *tidyState
}

// tidyState is shared by a handler and its derived handlers.
type tidyState struct {
	mu   sync.Mutex // guards last
	last string
}

func newTidyHandler(next slog.Handler) *tidyHandler {
	return &tidyHandler{next: next, state: &tidyState{}}
}

func (h *tidyHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *tidyHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	var sig strings.Builder
	sig.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		v := a.Value.Resolve()
		if v.Kind() == slog.KindString && v.String() == "" {
			return true
		}
		out.AddAttrs(a)
		fmt.Fprintf(&sig, " %s=%v", a.Key, v)
		return true
	})
	h.state.mu.Lock()
	repeated := h.state.last == sig.String()
	h.state.last = sig.String()
	h.state.mu.Unlock()
	if repeated {
		return nil
	}
	return h.next.Handle(ctx, out)
}

func (h *tidyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &tidyHandler{next: h.next.WithAttrs(as), state: h.state}
}

func (h *tidyHandler) WithGroup(name string) slog.Handler {
	return &tidyHandler{next: h.next.WithGroup(name), state: h.state}
}

// verboseSigner logs the non-secret parts of every assertion it signs:
// header alg, kid and jku; claims iss, sub, aud; the lifetime; the length
// of the jti. Never the assertion, its signature or the jti itself.
type verboseSigner struct {
	*jwtassert.Signer
	use string // "client assertion" or "jwt_bearer assertion"
	log *slog.Logger
}

// Sign signs c and logs what the server will check.
func (v *verboseSigner) Sign(c jwtassert.Claims) (string, error) {
	jws, err := v.Signer.Sign(c)
	if err != nil {
		return "", err
	}
	parts := strings.Split(jws, ".")
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		JKU string `json:"jku"`
	}
	var cl struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
		Iat int64  `json:"iat"`
		Exp int64  `json:"exp"`
		Jti string `json:"jti"`
	}
	if len(parts) == 3 && decodeSegment(parts[0], &hdr) == nil && decodeSegment(parts[1], &cl) == nil {
		v.log.Debug("oauthkit: "+v.use+" signed", "alg", hdr.Alg, "kid", hdr.Kid, "jku", hdr.JKU,
			"iss", cl.Iss, "sub", cl.Sub, "aud", fmt.Sprint(cl.Aud),
			"lifetime", time.Duration(cl.Exp-cl.Iat)*time.Second, "jti_length", len(cl.Jti))
	}
	return jws, nil
}

// decodeSegment decodes one base64url JSON segment of a compact JWS or JWT.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
