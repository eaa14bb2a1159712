package leakproof_test

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// pkgAPI is the exported API of one package that the probe covers.
type pkgAPI struct {
	path  string   // import path
	name  string   // package name
	types []string // exported type names, generic ones left out
	ctors []ctor   // exported New… functions
	// generic names the exported generic types, which cannot be
	// instantiated without type arguments.
	generic []string
}

// ctor is an exported constructor and its parameter names.
type ctor struct {
	name   string
	params []string
}

// moduleRoot returns the directory holding go.mod and the module path.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir = wd; ; dir = filepath.Dir(dir) {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
					return dir, strings.Trim(f[1], `"`)
				}
			}
			t.Fatalf("%s/go.mod names no module", dir)
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("no go.mod above %s", wd)
		}
	}
}

// skipDir reports whether the walk leaves out the directory called name:
// internal packages, test data, hidden and ignored directories, vendored
// and Node.js code.
func skipDir(name string) bool {
	return name == "internal" || name == "testdata" || name == "vendor" || name == "node_modules" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// exportedAPI lists, per importable non-internal package of the module,
// its exported types and constructors, reading the non-test Go files that
// build on this platform.
func exportedAPI(t *testing.T, root, module string) []pkgAPI {
	t.Helper()
	var pkgs []pkgAPI
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if path != root && skipDir(d.Name()) {
			return filepath.SkipDir
		}
		if path != root {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // another module
			}
		}
		api, err := parsePackage(root, module, path)
		if err != nil {
			return err
		}
		if api != nil {
			pkgs = append(pkgs, *api)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk module: %v", err)
	}
	return pkgs
}

// parsePackage reads the package in dir; it returns nil for a directory
// without one, or with a main package.
func parsePackage(root, module, dir string) (*pkgAPI, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	api := &pkgAPI{}
	seenType := map[string]bool{}
	seenCtor := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		if ok, err := build.Default.MatchFile(dir, n); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, n), nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if f.Name.Name == "main" {
			return nil, nil
		}
		api.name = f.Name.Name
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				if d.Tok != token.TYPE {
					continue
				}
				for _, s := range d.Specs {
					ts := s.(*ast.TypeSpec)
					if !ts.Name.IsExported() || seenType[ts.Name.Name] {
						continue
					}
					seenType[ts.Name.Name] = true
					if ts.TypeParams != nil {
						api.generic = append(api.generic, ts.Name.Name)
						continue
					}
					api.types = append(api.types, ts.Name.Name)
				}
			case *ast.FuncDecl:
				name := d.Name.Name
				if d.Recv != nil || !d.Name.IsExported() || !strings.HasPrefix(name, "New") ||
					d.Type.TypeParams != nil || seenCtor[name] {
					continue
				}
				seenCtor[name] = true
				c := ctor{name: name}
				for _, field := range d.Type.Params.List {
					if len(field.Names) == 0 {
						c.params = append(c.params, "")
					}
					for _, id := range field.Names {
						c.params = append(c.params, id.Name)
					}
				}
				api.ctors = append(api.ctors, c)
			}
		}
	}
	if len(api.types) == 0 && len(api.ctors) == 0 {
		return nil, nil // nothing to probe, as in a package of tests only
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		return nil, err
	}
	api.path = module
	if rel != "." {
		api.path += "/" + filepath.ToSlash(rel)
	}
	sort.Strings(api.types)
	return api, nil
}

// fixtureSource declares the checker's own fixtures: one type that prints
// its secret and one that redacts it. Their reports prove the checker
// finds a missing redaction and does not flag a present one.
const fixtureSource = `
// LeakyFixture has secret fields and no redaction.
type LeakyFixture struct {
	ClientID     string
	ClientSecret string
	Form         url.Values
	SigningKey   ed25519.PrivateKey
}

// RedactedFixture has a secret field and redacts it every way.
type RedactedFixture struct {
	ClientSecret string
}

func (RedactedFixture) Format(f fmt.State, _ rune) { fmt.Fprint(f, "RedactedFixture{ClientSecret:REDACTED}") }

func (RedactedFixture) LogValue() slog.Value { return slog.StringValue("REDACTED") }
`

// generateProgram returns the source of a main package that probes every
// type and constructor of pkgs, plus the fixtures.
func generateProgram(module string, pkgs []pkgAPI) []byte {
	var b bytes.Buffer
	b.WriteString("// Code generated by the leakproof test. DO NOT EDIT.\n\npackage main\n\nimport (\n")
	b.WriteString("\t\"crypto/ed25519\"\n\t\"fmt\"\n\t\"log/slog\"\n\t\"net/url\"\n\t\"os\"\n\t\"reflect\"\n\n")
	fmt.Fprintf(&b, "\t%q\n", module+"/internal/leakproof")
	for i, p := range pkgs {
		fmt.Fprintf(&b, "\tp%d %q\n", i, p.path)
	}
	b.WriteString(")\n")
	b.WriteString(fixtureSource)
	b.WriteString("\nvar types = []leakproof.Type{\n")
	b.WriteString("\t{Name: \"fixture.LeakyFixture\", Type: reflect.TypeFor[LeakyFixture]()},\n")
	b.WriteString("\t{Name: \"fixture.RedactedFixture\", Type: reflect.TypeFor[RedactedFixture]()},\n")
	for i, p := range pkgs {
		for _, tn := range p.types {
			fmt.Fprintf(&b, "\t{Name: %q, Type: reflect.TypeFor[p%d.%s]()},\n", p.name+"."+tn, i, tn)
		}
	}
	b.WriteString("}\n\nvar funcs = []leakproof.Func{\n")
	for i, p := range pkgs {
		for _, c := range p.ctors {
			fmt.Fprintf(&b, "\t{Name: %q, Fn: p%d.%s, Params: %#v},\n", p.name+"."+c.name, i, c.name, c.params)
		}
	}
	b.WriteString("}\n\nfunc main() {\n")
	fmt.Fprintf(&b, "\tif err := leakproof.Probe(os.Stdout, %q, types, funcs); err != nil {\n", module)
	b.WriteString("\t\tfmt.Fprintln(os.Stderr, err)\n\t\tos.Exit(1)\n\t}\n}\n")
	return b.Bytes()
}
