package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/oauthkit/oauthkit/jwtassert"
)

const keygenExample = `	# A new key for an Epic / SMART backend app; publish jwks.json at its JWK Set URL:
	oauthkit keygen -alg ES384 -kid k1 -out key.pem > jwks.json

	# An RSA key whose key ID is its JWK thumbprint:
	oauthkit keygen -alg RS384 -out key.pem`

func runKeygen(args []string, e *env) error {
	fset := newFlagSet("keygen", "[-alg ALG] [-kid ID] -out key.pem [-force]", keygenExample, e)
	alg := fset.String("alg", "ES384", "JWS `algorithm`: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA")
	kid := fset.String("kid", "", "key `ID`, stored with the key (default: the key's RFC 7638 JWK thumbprint)")
	out := fset.String("out", "", "write the private key (PKCS #8 PEM with a kid header, mode 0600) to this `file`")
	force := fset.Bool("force", false, "replace -out if it exists")
	if err := parseFlags(fset, args, e); err != nil {
		return err
	}
	if fset.NArg() != 0 {
		return usagef("unexpected argument %q", fset.Arg(0))
	}
	if *out == "" {
		return usagef("-out is required")
	}
	algName, err := normalizeAlg(*alg, "-alg")
	if err != nil {
		return err
	}
	key, err := jwtassert.GenerateKey(algName)
	if err != nil {
		return err
	}
	opts := jwtassert.Options{KeyID: *kid, Algorithm: algName}
	if opts.KeyID == "" {
		if opts.KeyID, err = thumbprint(key.Public()); err != nil {
			return err
		}
	}
	signer, err := jwtassert.NewSigner(key, opts)
	if err != nil {
		return err
	}
	// The key ID is stored with the key (a "kid" PEM header), so that
	// jwks, token -key and the library's LoadPEMFile sign with it.
	pemBytes, err := jwtassert.EncodePEMWithKeyID(key, signer.KeyID())
	if err != nil {
		return err
	}
	defer clear(pemBytes)
	if err := writePrivateFile(*out, pemBytes, *force); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "oauthkit: wrote %s private key %s (kid %q, mode 0600); keep it secret. Its public JWK Set follows.\n", signer.Algorithm(), *out, signer.KeyID())
	return printJWKS(e, signer)
}

// writePrivateFile writes data to path with mode 0600. Without force it
// refuses to replace an existing file (O_EXCL); with force it writes a
// temporary file next to path and renames it over path, so path never
// holds a partial key nor keeps a looser mode.
func writePrivateFile(path string, data []byte, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists; not overwriting a key (use -force to replace it)", path)
			}
			return err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return err
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	// os.CreateTemp creates the file with mode 0600 (before umask).
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
