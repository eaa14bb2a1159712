package leakproof

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
)

// secretName matches field, parameter and map-key names that hold secrets.
var secretName = regexp.MustCompile(`(?i)(secret|token|password|assertion|key|credential|private|proof|cookie|authorization|bearer|code_?verifier)`)

// notSecretName matches names that secretName would match but that name
// identifiers, locations or kinds rather than secret values: a key ID, a
// token type, a token URL, a cache key (a hash, documented safe to log),
// the names (keys) of form members.
var notSecretName = regexp.MustCompile(`(?i)(id|ids|type|types|url|uri|urls|uris|endpoint|prefix|supported|support|lifetime|ttl|timeout|lease|size|dir|cachekey|keys)$`)

// harmless is the value of every string that is not secret-bearing.
const harmless = "plain"

// maxDepth bounds the recursion through nested structs and pointers.
const maxDepth = 6

var (
	typeURLValues  = reflect.TypeFor[url.Values]()
	typeHTTPHeader = reflect.TypeFor[http.Header]()
	typeContext    = reflect.TypeFor[context.Context]()
	typeRSAKey     = reflect.TypeFor[*rsa.PrivateKey]()
	typeECDSAKey   = reflect.TypeFor[*ecdsa.PrivateKey]()
	typeEd25519Key = reflect.TypeFor[ed25519.PrivateKey]()
	typeError      = reflect.TypeFor[error]()
	typeEmptyIface = reflect.TypeFor[any]()
)

// isSecretName reports whether a field, parameter or map key called name
// holds a secret.
func isSecretName(name string) bool {
	return secretName.MatchString(name) && !notSecretName.MatchString(name)
}

// isURLName reports whether a string called name holds a URL that a
// caller configures (and may put an API gateway key into).
func isURLName(name string) bool {
	u := strings.ToUpper(name)
	return strings.HasSuffix(u, "URL") || strings.HasSuffix(u, "URLS") || strings.HasSuffix(u, "ORIGINS")
}

// filler builds populated values by reflection, planting a fresh marker in
// every secret-bearing place and remembering where it put each one.
type filler struct {
	module  string         // import path prefix of the module's own types
	types   []reflect.Type // candidate concrete types for interface fields
	keys    *keySet
	variant int // which implementation each interface field gets
	book    *book
	// empty leaves strings that are not secret-bearing empty instead of
	// harmless, for constructors that reject unknown values.
	empty bool

	widest int // the most candidates any interface field had
}

// fill populates v, which must be settable; name is the field, parameter
// or map key v is stored under, path where it is, for reports.
func (f *filler) fill(v reflect.Value, name, path string, depth int) {
	if depth > maxDepth || !v.CanSet() {
		return
	}
	t := v.Type()
	switch {
	case t == typeContext:
		v.Set(reflect.ValueOf(context.Background()))
		return
	case t == typeRSAKey || t == typeECDSAKey || t == typeEd25519Key:
		k := f.keys.forType(t)
		f.book.addKey(path, k)
		v.Set(reflect.ValueOf(k.key))
		return
	case t == typeURLValues || t == typeHTTPHeader:
		m := reflect.MakeMap(t)
		for _, k := range []string{"K0", "Authorization"} {
			m.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf([]string{f.book.marker(path + "[" + k + "]")}))
		}
		v.Set(m)
		return
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(f.stringFor(name, path))
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if isSecretName(name) {
				m := f.book.marker(path)
				v.SetBytes([]byte(m + m)) // 32 bytes: the size of most symmetric keys
			} else {
				v.SetBytes([]byte(harmless))
			}
			return
		}
		s := reflect.MakeSlice(t, 1, 1)
		f.fill(s.Index(0), name, path+"[0]", depth+1)
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			f.fill(v.Index(i), name, fmt.Sprintf("%s[%d]", path, i), depth+1)
		}
	case reflect.Map:
		f.fillMap(v, name, path, depth)
	case reflect.Pointer:
		e := t.Elem()
		if !f.isModuleType(e) && !strings.HasPrefix(e.PkgPath(), "golang.org/x/oauth2") {
			// Pointers to other packages' types (a *slog.Logger, an
			// *http.Client) stay nil: their zero values are not usable.
			// x/oauth2's configurations and tokens are plain data, which
			// the module's adapters take with their secrets.
			return
		}
		p := reflect.New(e)
		f.fill(p.Elem(), name, path, depth+1)
		v.Set(p)
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			f.fill(v.Field(i), sf.Name, path+"."+sf.Name, depth+1)
		}
	case reflect.Interface:
		f.fillInterface(v, name, path, depth)
	}
}

// stringFor returns the value of a string called name at path.
func (f *filler) stringFor(name, path string) string {
	switch {
	case isURLName(name):
		return "https://h.example/p?key=" + f.book.marker(path+"?key")
	case isSecretName(name):
		return f.book.marker(path)
	case f.empty && !strings.HasSuffix(name, "ID"):
		// Identifiers (a client ID) are required where they appear.
		return ""
	}
	return harmless
}

// fillMap gives a map with string keys one entry, whose value is secret
// when the map's name says so.
func (f *filler) fillMap(v reflect.Value, name, path string, depth int) {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		return
	}
	m := reflect.MakeMap(t)
	kv := reflect.New(t.Key()).Elem()
	kv.SetString("k0")
	ev := reflect.New(t.Elem()).Elem()
	f.fill(ev, name, path+"[k0]", depth+1)
	m.SetMapIndex(kv, ev)
	v.Set(m)
}

// fillInterface sets an interface-typed value: a generated key where a
// key belongs, else one of the module's types that implements the
// interface (which one depends on the variant), else a marker string
// where any value fits and the name says secret.
func (f *filler) fillInterface(v reflect.Value, name, path string, depth int) {
	t := v.Type()
	if t == typeError {
		return
	}
	if t.NumMethod() > 0 && typeRSAKey.Implements(t) || t == typeEmptyIface && isSecretName(name) && strings.Contains(strings.ToLower(name), "key") {
		// crypto.Signer and narrower interfaces, or crypto.PrivateKey (any)
		// in a field named for a key.
		k := f.keys.pick(f.variant)
		f.book.addKey(path, k)
		v.Set(reflect.ValueOf(k.key))
		return
	}
	if t == typeEmptyIface {
		v.Set(reflect.ValueOf(f.stringFor(name, path)))
		return
	}
	var cands []reflect.Type
	for _, c := range f.types {
		for _, ct := range []reflect.Type{c, reflect.PointerTo(c)} {
			if ct.Implements(t) {
				cands = append(cands, ct)
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	f.widest = max(f.widest, len(cands))
	ct := cands[f.variant%len(cands)]
	nv := reflect.New(ct).Elem()
	f.fill(nv, name, path+"("+typeName(ct)+")", depth+1)
	v.Set(nv)
}

// isModuleType reports whether t (or what it points to) is declared in
// the module under test, or is a key type that gets a generated key.
func (f *filler) isModuleType(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return strings.HasPrefix(t.PkgPath(), f.module)
}

// typeName names t for reports: package name and type name, with a star
// for pointers.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return "*" + typeName(t.Elem())
	}
	return t.String()
}
