// Command testsummary reads `go test -json` output on standard input and
// prints what a person wants from it: each package's result, the full
// output of every failed test, the names of skipped tests, and a closing
// line "N passed, N failed, N skipped". It exits 1 if anything failed
// (a test, a package build, or a package without a result).
//
//	go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
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

func main() { os.Exit(run(os.Stdin, os.Stdout)) }

func run(in io.Reader, out io.Writer) int {
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
	for _, k := range failedTests {
		fmt.Fprintf(out, "\n--- FAIL: %s\n", k)
		if b := outputs[k]; b != nil {
			fmt.Fprint(out, b.String())
		}
	}
	if len(skippedTests) > 0 {
		fmt.Fprintln(out, "\nskipped:")
		for _, k := range skippedTests {
			reason := ""
			if b := outputs[k]; b != nil {
				lines := strings.Split(strings.TrimSpace(b.String()), "\n")
				reason = strings.TrimSpace(lines[len(lines)-1])
			}
			fmt.Fprintf(out, "  %s: %s\n", k, reason)
		}
	}
	failed := len(failedTests) + missing
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
