// Package cloudauth holds benchmarks that compare the hot path of
// oauthclient.Transport with cloud.google.com/go/auth's cached token
// provider, golang.org/x/oauth2 and a lower-bound transport, in one run:
//
//	cd benchmarks/cloudauth
//	go test -run='^$' -bench=. -benchmem -count=6
//
// It is a module of its own, so that the oauthkit module does not depend
// on cloud.google.com/go/auth.
package cloudauth
