package demo

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// StatusText returns "200 OK" for 200, and so on.
func StatusText(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// Plural returns one if n is 1, else many.
func Plural[N ~int | ~int64](n N, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NewLogger returns a text logger on w: warnings and errors, or everything
// down to debug messages (token fetches, cache decisions) when verbose.
// oauthclient never logs a token.
func NewLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
