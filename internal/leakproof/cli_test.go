package leakproof_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/jwtassert"
)

// cliAuths are the ways the command line is given client credentials.
var cliAuths = []struct {
	name string
	args func(k *flowKit, dir string) (args, env []string)
}{
	{"basic-secret-from-env", func(k *flowKit, _ string) ([]string, []string) {
		return []string{"-auth", "basic"}, []string{"OAUTHKIT_CLIENT_SECRET=" + k.secret("client secret")}
	}},
	{"post-secret-file", func(k *flowKit, dir string) ([]string, []string) {
		f := filepath.Join(dir, "client.secret")
		if err := os.WriteFile(f, []byte(k.secret("client secret")+"\n"), 0o600); err != nil {
			panic(err)
		}
		return []string{"-auth", "post", "-secret-file", f}, nil
	}},
	{"private_key_jwt", func(k *flowKit, dir string) ([]string, []string) {
		return []string{"-auth", "private_key_jwt", "-key", filepath.Join(dir, "key.pem")}, nil
	}},
}

// cliFlows builds cmd/oauthkit and runs "oauthkit token -v" against the
// hostile server in every mode with every kind of client credential.
// Only a successful run may print a token, and only the access token,
// only on standard output.
func cliFlows(t *testing.T, key *ecdsa.PrivateKey) {
	root, _ := moduleRoot(t)
	bin := filepath.Join(t.TempDir(), "oauthkit")
	build := exec.Command("go", "build", "-o", bin, "./cmd/oauthkit")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/oauthkit: %v\n%s", err, truncate(string(out), 4000))
	}
	pemBytes, err := jwtassert.EncodePEM(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cliAuths {
		for _, mode := range modes {
			t.Run(a.name+"/"+mode, func(t *testing.T) {
				// The command's own retry schedule sleeps; run in parallel.
				t.Parallel()
				k := newFlowKit(t, key, nil)
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "key.pem"), pemBytes, 0o600); err != nil {
					t.Fatal(err)
				}
				args, env := a.args(k, dir)
				args = append([]string{"token",
					"-token-url", k.srv.URL + "/token/" + mode,
					"-client-id", clientID,
					"-scope", "system/Patient.rs",
					"-cache", "memory",
					"-timeout", "20s",
					"-v",
				}, args...)
				ctx, cancel := context.WithTimeout(context.Background(), 2*flowTimeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, args...)
				cmd.Env = append(cliEnv(dir), env...)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if err != nil && !errors.As(err, &exit) {
					t.Fatalf("run oauthkit: %v", err)
				}
				if err == nil {
					k.book.check(t, "stdout", stdout.String(), "access token (issued)")
				} else {
					k.book.check(t, "stdout", stdout.String())
				}
				k.book.check(t, "stderr", stderr.String())
				if k.srv.hits.Load() == 0 {
					t.Error("the hostile server received no request")
				}
				if mode == modeOK200 && err != nil {
					t.Errorf("oauthkit token failed against a server that answered 200 with a token: %v", err)
				}
			})
		}
	}
}

// cliEnv is the environment of the command: the test's, without any
// oauthkit setting, with home and cache directories inside dir.
func cliEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "OAUTHKIT_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+dir, "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
}
