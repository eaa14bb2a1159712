package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"time"

	"github.com/oauthkit/oauthkit/oauthclient"
)

// deviceFlags are the login command's device flow (RFC 8628) flags.
type deviceFlags struct {
	fs      *flag.FlagSet
	on      *bool
	authURL *string
}

// addDeviceFlags adds -device and -device-auth-url to the login command.
// -device is on by default where no browser can be opened: on systems
// other than macOS and Windows when neither DISPLAY nor WAYLAND_DISPLAY is
// set (an SSH session, a container), unless -no-browser is given.
func addDeviceFlags(fs *flag.FlagSet, e *env) *deviceFlags {
	return &deviceFlags{
		fs: fs,
		on: fs.Bool("device", noDisplay(runtime.GOOS, e.getenv),
			"log in with the device flow (RFC 8628): enter a code shown here on any device with a browser (default: on when there is no display, unless -no-browser is given)"),
		authURL: fs.String("device-auth-url", "", "device authorization endpoint `URL` (default: from -fhir-base discovery)"),
	}
}

// noDisplay reports whether no graphical browser can be opened here.
func noDisplay(goos string, getenv func(string) string) bool {
	if goos == "darwin" || goos == "windows" {
		return false
	}
	return getenv("DISPLAY") == "" && getenv("WAYLAND_DISPLAY") == ""
}

// wanted reports whether to log in with the device flow: -device as
// given, or by default when there is no display and -no-browser (which
// asks for the browser login with its URL printed) was not given.
func (d *deviceFlags) wanted(noBrowser bool) bool {
	if d.explicit() {
		return *d.on
	}
	return *d.on && !noBrowser
}

// explicit reports whether -device was given on the command line.
func (d *deviceFlags) explicit() bool {
	set := false
	d.fs.Visit(func(f *flag.Flag) { set = set || f.Name == "device" })
	return set
}

// errNoDeviceEndpoint: the server advertises no device authorization endpoint.
var errNoDeviceEndpoint = errors.New("the server advertises no device_authorization_endpoint; give -device-auth-url, or log in with -device=false")

// deviceEndpoint returns the device authorization endpoint: -device-auth-url,
// else the one the SMART configuration (or the metadata of its issuer)
// advertises.
func (d *deviceFlags) deviceEndpoint(ctx context.Context, s *settings, log *slog.Logger) (string, error) {
	if *d.authURL != "" {
		return *d.authURL, nil
	}
	if s.fhirBase == "" {
		return "", errNoDeviceEndpoint
	}
	sc, err := oauthclient.DiscoverSMART(ctx, s.fhirBase)
	if err != nil {
		return "", fmt.Errorf("-fhir-base %s: %w", redactURL(s.fhirBase), err)
	}
	u := sc.DeviceAuthorizationEndpoint
	if u == "" && sc.Issuer != "" {
		if m, err := oauthclient.DiscoverServer(ctx, sc.Issuer); err == nil {
			u = m.DeviceAuthorizationEndpoint
		}
	}
	if u == "" {
		return "", errNoDeviceEndpoint
	}
	if log != nil {
		log.Debug("oauthkit: device authorization endpoint from discovery", "device_authorization_endpoint", u)
	}
	return u, nil
}

// runDeviceLogin is login -device: the device flow, its tokens stored in
// the cache like those of the browser login. It returns handled false
// (and no error) when -device was only the default and the server has no
// device endpoint, so that the browser login runs instead.
func runDeviceLogin(d *deviceFlags, s *settings, e *env) (handled bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	log := s.logger(e)
	if err := s.endpoints(ctx, log); err != nil {
		return true, explain(ctx, err, s.timeout)
	}
	endpoint, err := d.deviceEndpoint(ctx, s, log)
	if errors.Is(err, errNoDeviceEndpoint) && !d.explicit() {
		fmt.Fprintln(e.stderr, "oauthkit: no display, but no device authorization endpoint is known; using the browser login.")
		return false, nil
	}
	if err != nil {
		return true, explain(ctx, err, s.timeout)
	}
	// The token source that will hold the login's tokens: built first, so
	// that a bad setting fails before anyone logs in.
	cfg, desc, err := s.config(e, log)
	if err != nil {
		return true, err
	}
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		return true, err
	}
	dc := oauthclient.DeviceLoginConfig{
		DeviceAuthURL:     endpoint,
		TokenURL:          cfg.TokenURL,
		ClientID:          cfg.ClientID,
		Auth:              cfg.Auth,
		Scopes:            cfg.Scopes,
		Out:               e.stderr,
		InsecureAllowHTTP: s.insecureHTTP,
		DPoPKey:           cfg.DPoPKey,
	}
	if s.fhirBase != "" {
		// SMART: the audience of the token is the FHIR server.
		dc.Params = url.Values{"aud": {s.fhirBase}}
	}
	// The person needs time to approve: the wait ends when the device
	// code expires; -timeout bounds each request.
	loginCtx, stop := context.WithTimeout(context.Background(), max(s.timeout, time.Hour))
	defer stop()
	tok, err := oauthclient.DeviceLogin(loginCtx, dc)
	if err != nil {
		return true, explain(loginCtx, err, s.timeout)
	}
	seedCtx, cancelSeed := context.WithTimeout(context.Background(), s.timeout)
	defer cancelSeed()
	if err := ts.Seed(seedCtx, tok); err != nil {
		return true, explain(seedCtx, err, s.timeout)
	}
	if tok.RefreshToken == "" {
		fmt.Fprintf(e.stderr, "oauthkit: logged in, but the server sent no refresh token (ask for the offline_access scope?): the token in the %s works until it expires.\n", desc)
		return true, nil
	}
	fmt.Fprintf(e.stderr, "oauthkit: logged in; tokens stored in the %s.\nRun 'oauthkit token -grant refresh_token' with the same client ID, endpoint, scopes and -cache to get access tokens.\n", desc)
	return true, nil
}
