// Command testsummary reads `go test -json` output on standard input and
// prints what a person wants from it: each package's result, the full
// output of every failed test, the names of skipped tests, and a closing
// line "N passed, N failed, N skipped". It exits 1 if anything failed
// (a test, a package build, a package without a result, or a check).
//
//	go test -json ./... | go run ./internal/testsummary [-checks file]
//
// The checks file holds the results of checks that are not Go tests
// (gofmt, go vet, staticcheck, fuzz runs), one a line: "ok NAME" or
// "FAIL NAME". They are listed after the packages and counted in the
// closing line; their output is the caller's to print.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	checksFile := flag.String("checks", "", "file of check results, one a line: \"ok NAME\" or \"FAIL NAME\"")
	flag.Parse()
	var checks []check
	if *checksFile != "" {
		f, err := os.Open(*checksFile)
		if err != nil {
			err = fmt.Errorf("testsummary: %w", err)
		} else {
			checks, err = parseChecks(f)
			f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	os.Exit(run(os.Stdin, checks, os.Stdout))
}

// check is the result of a check that is not a Go test.
type check struct {
	name string
	ok   bool
}

// parseChecks reads check results, one a line: "ok NAME" or "FAIL NAME".
// Blank lines are ignored.
func parseChecks(r io.Reader) ([]check, error) {
	var checks []check
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		result, name, _ := strings.Cut(line, " ")
		name = strings.TrimSpace(name)
		if (result != "ok" && result != "FAIL") || name == "" {
			return nil, fmt.Errorf("testsummary: checks line %d: want \"ok NAME\" or \"FAIL NAME\"", n)
		}
		checks = append(checks, check{name: name, ok: result == "ok"})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("testsummary: read checks: %w", err)
	}
	return checks, nil
}

func run(in io.Reader, checks []check, out io.Writer) int {
	outputs := map[string]*strings.Builder{} // package + test → output
	var failedTests, skippedTests []string
	passed := 0
	pkgResult := map[string]string{}
	var pkgs []string
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(out, sc.Text()) // build errors arrive as plain text
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "start":
			pkgs = append(pkgs, e.Package)
		case "build-output":
			fmt.Fprint(out, e.Output)
		case "output":
			b := outputs[key]
			if b == nil {
				b = &strings.Builder{}
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				pkgResult[e.Package] = fmt.Sprintf("%-4s %s (%.1fs)", map[string]string{"pass": "ok", "fail": "FAIL", "skip": "ok"}[e.Action], e.Package, e.Elapsed)
				if e.Action == "fail" {
					failedTests = append(failedTests, key)
				}
				continue
			}
			switch e.Action {
			case "pass":
				passed++
			case "fail":
				failedTests = append(failedTests, key)
			case "skip":
				skippedTests = append(skippedTests, key)
			}
		}
	}
	sort.Strings(pkgs)
	missing := 0
	for _, p := range pkgs {
		r, ok := pkgResult[p]
		if !ok {
			r = "FAIL " + p + " (no result)"
			missing++
		}
		fmt.Fprintln(out, r)
	}
	var failedChecks []string
	for _, c := range checks {
		if c.ok {
			passed++
			fmt.Fprintf(out, "ok   %s\n", c.name)
			continue
		}
		failedChecks = append(failedChecks, c.name)
		fmt.Fprintf(out, "FAIL %s\n", c.name)
	}
	for _, k := range failedTests {
		fmt.Fprintf(out, "\n--- FAIL: %s\n", k)
		if b := outputs[k]; b != nil {
			fmt.Fprint(out, b.String())
		}
	}
	for _, name := range failedChecks {
		fmt.Fprintf(out, "\n--- FAIL: %s (its output is above)\n", name)
	}
	if len(skippedTests) > 0 {
		fmt.Fprintln(out, "\nskipped:")
		for _, k := range skippedTests {
			fmt.Fprintf(out, "  %s: %s\n", k, skipReason(outputs[k]))
		}
	}
	failed := len(failedTests) + missing + len(failedChecks)
	if len(pkgs) == 0 {
		fmt.Fprintln(out, "no test package ran")
		failed++
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, len(skippedTests))
	if failed > 0 {
		return 1
	}
	return 0
}

// skipReason returns the last line a skipped test printed itself, without
// go test's "=== RUN" and "--- SKIP" lines.
func skipReason(output *strings.Builder) string {
	if output == nil {
		return "no reason given"
	}
	lines := strings.Split(strings.TrimSpace(output.String()), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		if line == "" || strings.HasPrefix(line, "=== ") || strings.HasPrefix(line, "--- SKIP: ") {
			continue
		}
		return line
	}
	return "no reason given"
}
