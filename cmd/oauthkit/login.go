package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"

	"github.com/oauthkit/oauthkit/oauthclient"
)

const loginExample = `	# Log in once; the refresh token goes to the OS keychain:
	oauthkit login -fhir-base https://fhir.example.org/api/FHIR/R4 -client-id abc \
		-scope "openid fhirUser offline_access patient/Patient.rs"

	# Afterwards, in scripts, with the same client ID, endpoint, scopes and cache:
	oauthkit token -grant refresh_token -fhir-base https://fhir.example.org/api/FHIR/R4 \
		-client-id abc -scope "openid fhirUser offline_access patient/Patient.rs"`

func runLogin(args []string, e *env) error {
	fs := newFlagSet("login", connSynopsis+" [-auth-url URL] [-no-browser] [-device [-device-auth-url URL]]", loginExample, e)
	cf := addConnFlags(fs, true)
	noBrowser := fs.Bool("no-browser", false, "only print the authorization URL; do not try to open a browser")
	port := fs.Int("port", 0, "`port` of the redirect listener on 127.0.0.1 (default: any free port)")
	device := addDeviceFlags(fs, e)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		return usagef("-port must be between 0 and 65535")
	}
	s, err := cf.settings(e)
	if err != nil {
		return err
	}
	if device.wanted(*noBrowser) {
		if handled, err := runDeviceLogin(device, s, e); handled {
			return err
		}
	}
	if s.authURL == "" && s.fhirBase == "" {
		return usagef("-auth-url or -fhir-base is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	log := s.logger(e)
	if err := s.endpoints(ctx, log); err != nil {
		return explain(ctx, err, s.timeout)
	}
	if s.authURL == "" {
		return fmt.Errorf("the SMART configuration of %s has no authorization_endpoint; give -auth-url", redactURL(s.fhirBase))
	}
	// The token source that will hold the login's tokens: built first, so
	// that a bad setting fails before anyone logs in.
	cfg, desc, err := s.config(e, log)
	if err != nil {
		return err
	}
	ts, err := oauthclient.NewTokenSource(cfg)
	if err != nil {
		return err
	}
	lc := oauthclient.LoginConfig{
		AuthURL:           s.authURL,
		TokenURL:          cfg.TokenURL,
		ClientID:          cfg.ClientID,
		Auth:              cfg.Auth,
		Scopes:            cfg.Scopes,
		Port:              *port,
		Out:               e.stderr,
		InsecureAllowHTTP: s.insecureHTTP,
		DPoPKey:           cfg.DPoPKey,
	}
	if s.fhirBase != "" {
		// SMART App Launch: the audience of the token is the FHIR server.
		lc.AuthParams = url.Values{"aud": {s.fhirBase}}
	}
	if !*noBrowser {
		lc.OpenBrowser = openBrowser
	}
	tok, err := oauthclient.Login(ctx, lc)
	if err != nil {
		return explain(ctx, err, s.timeout)
	}
	if err := ts.Seed(ctx, tok); err != nil {
		return explain(ctx, err, s.timeout)
	}
	if tok.RefreshToken == "" {
		fmt.Fprintf(e.stderr, "oauthkit: logged in, but the server sent no refresh token (ask for the offline_access scope?): the token in the %s works until it expires.\n", desc)
		return nil
	}
	fmt.Fprintf(e.stderr, "oauthkit: logged in; tokens stored in the %s.\nRun 'oauthkit token -grant refresh_token' with the same client ID, endpoint, scopes and -cache to get access tokens.\n", desc)
	return nil
}

// openBrowser opens u in the desktop's browser, if there is one.
func openBrowser(u string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.Command("open", u)
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", u)
	default:
		// Without a display xdg-open may start a text browser in this
		// terminal; let the person open the URL instead.
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no display")
		}
		cmd = exec.Command("xdg-open", u)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it; its exit status does not matter
	return nil
}
