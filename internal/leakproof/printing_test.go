package leakproof_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/oauthkit/oauthkit/internal/leakproof"
)

// probeResult is the parsed output of the generated program.
type probeResult struct {
	// leaks maps a printed type (name, or *name, or Ctor()) and a verb to
	// the planted places whose secrets showed.
	leaks   map[string]map[string][]string
	summary *leakproof.Summary
}

// runProbe generates the probe program for pkgs in a temporary directory
// inside this package (so that it belongs to the module), runs it and
// parses its report.
func runProbe(t *testing.T, root, module string, pkgs []pkgAPI) probeResult {
	t.Helper()
	here, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(here, "_probe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// gofmt-ed, so that a gofmt -l . running meanwhile (the test command
	// runs one beside the tests) finds nothing to report.
	src, err := format.Source(generateProgram(module, pkgs))
	if err != nil {
		t.Fatalf("generated program: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), src, 0o600); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./"+filepath.ToSlash(rel))
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		// Build errors name files and lines, never values.
		t.Fatalf("probe program: %v\n%s", err, truncate(stderr.String(), 4000))
	}
	res := probeResult{leaks: map[string]map[string][]string{}}
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l leakproof.Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("probe output line is not JSON: %v", err)
		}
		switch {
		case l.Summary != nil:
			res.summary = l.Summary
		case l.Finding != nil:
			f := l.Finding
			if res.leaks[f.Type] == nil {
				res.leaks[f.Type] = map[string][]string{}
			}
			for _, p := range f.Leaks {
				if !slices.Contains(res.leaks[f.Type][f.Verb], p) {
					res.leaks[f.Type][f.Verb] = append(res.leaks[f.Type][f.Verb], p)
				}
			}
		}
	}
	if res.summary == nil {
		t.Fatal("probe program ended without its summary")
	}
	return res
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// verbOrder is the order in which failure lines list the ways of printing.
var verbOrder = append(slices.Clone(leakproof.Verbs), "slog JSON", "slog text")

// failures lists one line per set of planted secrets that the printed
// forms (value and pointer) of name show, with the verbs that show them.
func (r probeResult) failures(name string) []string {
	type shown struct{ value, pointer []string }
	bySet := map[string]*shown{}
	for _, verb := range verbOrder {
		for _, label := range []string{name, "*" + name} {
			var paths []string
			for _, p := range r.leaks[label][verb] {
				if _, ok := exempt[name+" "+p]; !ok {
					paths = append(paths, p)
				}
			}
			if len(paths) == 0 {
				continue
			}
			sort.Strings(paths)
			key := strings.Join(paths, ", ")
			if bySet[key] == nil {
				bySet[key] = &shown{}
			}
			if label == name {
				bySet[key].value = append(bySet[key].value, verb)
			} else {
				bySet[key].pointer = append(bySet[key].pointer, verb)
			}
		}
	}
	var lines []string
	for paths, s := range bySet {
		var how []string
		if len(s.value) > 0 {
			how = append(how, name+" with "+strings.Join(s.value, ", "))
		}
		if len(s.pointer) > 0 {
			how = append(how, "*"+name+" with "+strings.Join(s.pointer, ", "))
		}
		lines = append(lines, "printing "+strings.Join(how, "; ")+" shows the secrets planted at "+paths)
	}
	sort.Strings(lines)
	return lines
}

// exempt lists, as "type path", planted places that are not secret for
// that type, with the reason.
var exempt = map[string]string{
	"oauthtest.Server .URL?key":      "the test server's own address, set by NewServer; callers never put a key in it",
	"oauthclient.Challenge .Token68": "a challenge the resource server sent, not a credential of the client",
}

// TestPrintedValuesHideSecrets builds a populated value of every exported
// type of the module (and the result of every New… constructor that takes
// a secret), prints it every way fmt and log/slog can, and fails for each
// type whose output shows a planted secret. The subtest names the type;
// each line names the verb and where the secret was planted.
func TestPrintedValuesHideSecrets(t *testing.T) {
	root, module := moduleRoot(t)
	pkgs := exportedAPI(t, root, module)
	if len(pkgs) == 0 {
		t.Fatal("found no package to probe")
	}
	res := runProbe(t, root, module, pkgs)

	t.Run("checker/finds_unredacted_fixture", func(t *testing.T) {
		for _, verb := range verbOrder {
			if !slices.Contains(res.leaks["fixture.LeakyFixture"][verb], ".ClientSecret") {
				t.Errorf("the checker missed the secret of fixture.LeakyFixture printed with %s", verb)
			}
		}
		for _, path := range []string{".Form[Authorization]", ".SigningKey (Ed25519 key)"} {
			if !slices.Contains(res.leaks["fixture.LeakyFixture"]["%+v"], path) {
				t.Errorf("the checker missed the secret planted at %s of fixture.LeakyFixture printed with %%+v", path)
			}
		}
	})
	t.Run("checker/accepts_redacted_fixture", func(t *testing.T) {
		for _, l := range res.failures("fixture.RedactedFixture") {
			t.Errorf("the checker flagged a redacted value: %s", l)
		}
	})

	var covered int
	for _, p := range pkgs {
		for _, tn := range p.types {
			name := p.name + "." + tn
			covered++
			t.Run(name, func(t *testing.T) {
				for _, l := range res.failures(name) {
					t.Error(l)
				}
			})
		}
		for _, c := range p.ctors {
			name := p.name + "." + c.name + "()"
			t.Run(name, func(t *testing.T) {
				for _, l := range res.failures(name) {
					t.Error(l)
				}
			})
		}
	}
	s := res.summary
	// A constructor that takes a secret must be probed, unless it needs
	// what a generated program cannot give it (said here, with where its
	// values are covered instead).
	unprobeable := map[string]string{
		"rediscache.New": "needs a live Redis client; Cache and Options are probed as types, and TestHostileServerFlowsHideSecrets runs a real one",
	}
	for _, name := range s.FuncsFailed {
		if _, ok := unprobeable[name]; !ok {
			t.Errorf("constructor %s takes a secret but could not be called with generated arguments: probe it (teach the filler its argument types) or list it in unprobeable with the reason", name)
		}
	}
	// Every type but interfaces and functions, the two fixtures, and every
	// constructor called was printed.
	if want := covered - len(s.Skipped) + 2 + s.FuncsCalled; s.Printed != want {
		t.Errorf("printed %d values, want %d (%d types, %d not buildable, 2 fixtures, %d constructors)", s.Printed, want, covered, len(s.Skipped), s.FuncsCalled)
	}
	t.Logf("probed %d exported types in %d packages and %d constructors; skipped %d interface and function types %v; constructors without a secret input %v; constructors with one that could not be called %v",
		covered, len(pkgs), s.FuncsCalled, len(s.Skipped), s.Skipped, s.FuncsSkipped, s.FuncsFailed)
	for _, p := range pkgs {
		if len(p.generic) > 0 {
			t.Logf("skipped generic types of %s: %v", p.path, p.generic)
		}
	}
}
