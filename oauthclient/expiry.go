package oauthclient

import "time"

// Expiry returns the expiry of the token the source holds in memory, and
// false when it holds none or the token's lifetime is unknown. It reads
// the in-memory state only (no lock, no cache, no request), so metrics can
// call it often, for example for a remaining-lifetime gauge. Safe for
// concurrent use.
func (s *TokenSource) Expiry() (time.Time, bool) {
	st := s.cur.Load()
	if st == nil || st.tok == nil || st.tok.Expiry.IsZero() {
		return time.Time{}, false
	}
	return st.tok.Expiry, true
}
