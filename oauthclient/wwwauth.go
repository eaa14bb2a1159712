package oauthclient

import "strings"

// Challenge is one challenge of a WWW-Authenticate header (RFC 9110 §11.6.1).
type Challenge struct {
	// Scheme is the auth scheme as sent (Bearer, DPoP, Basic, …); compare
	// it case-insensitively.
	Scheme string
	// Params are the auth-params, names lower-cased, quoted strings unquoted.
	Params map[string]string
	// Token68 is the token68 form, when the challenge uses it.
	Token68 string
}

// ParseWWWAuthenticate parses the values of WWW-Authenticate headers into
// challenges. It accepts several challenges per value, quoted strings with
// escapes and commas, and token68. Malformed parts are skipped; it never
// fails and never panics.
func ParseWWWAuthenticate(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		out = append(out, parseChallenges(v)...)
	}
	return out
}

func parseChallenges(s string) []Challenge {
	var out []Challenge
	l := &lexer{s: s}
	for {
		l.skipListSep()
		if l.eof() {
			return out
		}
		scheme := l.token()
		if scheme == "" {
			l.i++ // not a token character: skip it
			l.skipTo(',')
			continue
		}
		c := Challenge{Scheme: scheme}
		if t, ok := l.token68(); ok {
			c.Token68 = t
			out = append(out, c)
			continue
		}
		for {
			save := l.i
			l.skipListSep()
			if l.eof() {
				break
			}
			name := l.token()
			l.skipSpace()
			if name == "" || l.eof() || l.peek() != '=' {
				l.i = save // the next challenge starts here
				break
			}
			l.i++
			l.skipSpace()
			var val string
			if !l.eof() && l.peek() == '"' {
				val = l.quoted()
			} else {
				val = l.token()
			}
			if c.Params == nil {
				c.Params = map[string]string{}
			}
			if key := strings.ToLower(name); c.Params[key] == "" {
				c.Params[key] = val
			}
		}
		out = append(out, c)
	}
}

// token68 reads a token68 (RFC 9110 §11.2) after the scheme when one is
// there, that is when it runs to a comma or the end.
func (l *lexer) token68() (string, bool) {
	save := l.i
	l.skipSpace()
	if l.i == save {
		return "", false
	}
	start := l.i
	for !l.eof() && (isAlnum(l.s[l.i]) || strings.IndexByte("-._~+/", l.s[l.i]) >= 0) {
		l.i++
	}
	if l.i == start {
		l.i = save
		return "", false
	}
	for !l.eof() && l.peek() == '=' {
		l.i++
	}
	end := l.i
	l.skipSpace()
	if l.eof() || l.peek() == ',' {
		return l.s[start:end], true
	}
	l.i = save
	return "", false
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

type lexer struct {
	s string
	i int
}

func (l *lexer) eof() bool  { return l.i >= len(l.s) }
func (l *lexer) peek() byte { return l.s[l.i] }

func (l *lexer) skipSpace() {
	for !l.eof() && (l.s[l.i] == ' ' || l.s[l.i] == '\t') {
		l.i++
	}
}

func (l *lexer) skipListSep() {
	for !l.eof() && (l.s[l.i] == ' ' || l.s[l.i] == '\t' || l.s[l.i] == ',') {
		l.i++
	}
}

func (l *lexer) skipTo(b byte) {
	for !l.eof() && l.s[l.i] != b {
		l.i++
	}
}

// token reads an RFC 9110 token (tchar*).
func (l *lexer) token() string {
	start := l.i
	for !l.eof() && isTchar(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

func isTchar(b byte) bool {
	return isAlnum(b) || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// quoted reads a quoted-string starting at '"', handling backslash escapes;
// an unterminated string runs to the end.
func (l *lexer) quoted() string {
	l.i++ // opening quote
	var b strings.Builder
	for !l.eof() {
		c := l.s[l.i]
		l.i++
		switch c {
		case '\\':
			if !l.eof() {
				b.WriteByte(l.s[l.i])
				l.i++
			}
		case '"':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
