package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// profile holds connection settings read from the configuration file.
// It never holds a secret: only the path of a file that does.
type profile struct {
	TokenURL     string   `json:"token_url,omitempty"`
	FHIRBase     string   `json:"fhir_base,omitempty"`
	AuthURL      string   `json:"auth_url,omitempty"`
	ClientID     string   `json:"client_id,omitempty"`
	Key          string   `json:"key,omitempty"`
	KID          string   `json:"kid,omitempty"`
	Alg          string   `json:"alg,omitempty"`
	JKU          string   `json:"jku,omitempty"`
	Auth         string   `json:"auth,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	Grant        string   `json:"grant,omitempty"`
	Subject      string   `json:"subject,omitempty"`
	Cache        string   `json:"cache,omitempty"`
	SecretFile   string   `json:"secret_file,omitempty"`
	InsecureHTTP bool     `json:"insecure_http,omitempty"`
}

// maxConfigSize bounds config.json.
const maxConfigSize = 1 << 20

// configPath returns $OAUTHKIT_CONFIG, else os.UserConfigDir()/oauthkit/config.json.
func configPath(getenv func(string) string) (string, error) {
	if p := getenv("OAUTHKIT_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locate configuration file: %w", err)
	}
	return filepath.Join(dir, "oauthkit", "config.json"), nil
}

// loadProfile reads profile name from the configuration file. Paths in
// the profile (key, secret_file, cache directory) are used as written;
// relative ones are relative to the working directory, so absolute paths
// are recommended.
func loadProfile(name string, getenv func(string) string) (*profile, error) {
	path, err := configPath(getenv)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("profile %q: configuration file %s does not exist", name, path)
		}
		return nil, fmt.Errorf("profile %q: %w", name, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("profile %q: read %s: %w", name, path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("profile %q: %s is larger than 1 MiB", name, path)
	}
	return parseProfile(data, name, path)
}

// parseProfile decodes config.json strictly: unknown members are errors,
// so that a misspelt setting is not silently ignored, and a member that
// would hold a secret is refused with a pointer to secret_file.
func parseProfile(data []byte, name, path string) (*profile, error) {
	var raw struct {
		Profiles map[string]json.RawMessage `json:"profiles"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("profile %q: %s is not valid JSON", name, path)
	}
	msg, ok := raw.Profiles[name]
	if !ok {
		return nil, fmt.Errorf("profile %q not found in %s", name, path)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(msg, &members); err != nil {
		return nil, fmt.Errorf("profile %q in %s is not a JSON object", name, path)
	}
	for k := range members {
		switch strings.ToLower(k) {
		case "secret", "client_secret", "password", "refresh_token", "access_token", "private_key":
			return nil, fmt.Errorf("profile %q in %s: %q is not allowed: never store a secret in the configuration file (use secret_file)", name, path, k)
		}
	}
	var p profile
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("profile %q in %s: %s", name, path, jsonProblem(err))
	}
	return &p, nil
}

// jsonProblem describes a decoding error without quoting the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("member %q has the wrong type (want %s)", te.Field, te.Type)
	}
	if s := err.Error(); strings.HasPrefix(s, "json: unknown field ") {
		return "unknown member " + strings.TrimPrefix(s, "json: unknown field ")
	}
	return "invalid JSON"
}
