package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// dpopKeyUsage documents -dpop-key.
const dpopKeyUsage = "sender-constrain tokens with DPoP (RFC 9449), signing proofs with the private key in `file` " +
	"(PEM; make one with 'oauthkit keygen -alg ES256 -out dpop.pem'); header then also prints the DPoP proof line for -url"

const dpopHeaderExample = `	# A DPoP-bound token: both header lines, the proof made for this request:
	oauthkit header -profile epic -dpop-key dpop.pem -url https://fhir.example.org/api/FHIR/R4/Patient/123`

// loadDPoPKey reads the DPoP private key in path (PKCS #8, SEC 1 or
// PKCS #1 PEM); "" gives no key. Errors name the file, never its contents.
func loadDPoPKey(path string) (crypto.Signer, error) {
	if path == "" {
		return nil, nil
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("-dpop-key: %w", err)
	}
	defer clear(data)
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("-dpop-key: %s holds no PEM private key", path)
		}
		var key any
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("-dpop-key: %s: the %s block does not parse", path, block.Type)
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("-dpop-key: %s: unsupported key type", path)
		}
		return signer, nil
	}
}
