package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

const versionExample = `	oauthkit version`

const completionExample = `	# bash: load now, or add the line to ~/.bashrc
	source <(oauthkit completion bash)

	# zsh: write it to a directory of $fpath
	oauthkit completion zsh > "${fpath[1]}/_oauthkit"`

func runVersion(args []string, e *env) error {
	fs := newFlagSet("version", "", versionExample, e)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	version, extra := "(unknown)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = ", modified"
				}
			}
		}
		if rev != "" {
			extra = fmt.Sprintf(" (revision %.12s%s)", rev, modified)
		}
	}
	_, err := fmt.Fprintf(e.stdout, "oauthkit %s%s %s %s/%s\n", version, extra, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

func runCompletion(args []string, e *env) error {
	fs := newFlagSet("completion", "bash|zsh", completionExample, e)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want bash or zsh")
	}
	cmds := commandFlags(e)
	switch fs.Arg(0) {
	case "bash":
		return writeBash(e.stdout, cmds)
	case "zsh":
		return writeZsh(e.stdout, cmds)
	}
	return usagef("unknown shell %q (want bash or zsh)", fs.Arg(0))
}

// cmdFlags is a command and its flag names (with the leading "-").
type cmdFlags struct {
	name  string
	flags []string
}

// commandFlags lists every command with its flags, read from the usage
// each command prints for -h, so that the completion never drifts from
// the flags themselves.
func commandFlags(e *env) []cmdFlags {
	var out []cmdFlags
	for _, c := range commands() {
		var buf bytes.Buffer
		c.run([]string{"-h"}, &env{stdout: &buf, stderr: io.Discard, getenv: e.getenv})
		cf := cmdFlags{name: c.name}
		sc := bufio.NewScanner(&buf)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "  -"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					cf.flags = append(cf.flags, "-"+f[0])
				}
			}
		}
		out = append(out, cf)
	}
	return out
}

func commandNames(cmds []cmdFlags) string {
	names := []string{"help"}
	for _, c := range cmds {
		names = append(names, c.name)
	}
	return strings.Join(names, " ")
}

func writeBash(w io.Writer, cmds []cmdFlags) error {
	var b strings.Builder
	fmt.Fprintf(&b, `# bash completion for oauthkit; load with: source <(oauthkit completion bash)
_oauthkit() {
	local cur=${COMP_WORDS[COMP_CWORD]} flags=""
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "%s" -- "$cur"))
		return
	fi
	case "${COMP_WORDS[1]}" in
`, commandNames(cmds))
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s) flags=%q ;;\n", c.name, strings.Join(c.flags, " "))
	}
	fmt.Fprint(&b, `	help) COMPREPLY=($(compgen -W "`+commandNames(cmds)+`" -- "$cur")); return ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif [ "${COMP_WORDS[1]}" = completion ]; then
		COMPREPLY=($(compgen -W "bash zsh" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _oauthkit oauthkit
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeZsh(w io.Writer, cmds []cmdFlags) error {
	var b strings.Builder
	fmt.Fprintf(&b, `#compdef oauthkit
# zsh completion for oauthkit; save as _oauthkit in a directory of $fpath.
_oauthkit() {
	local -a flags
	if (( CURRENT == 2 )); then
		compadd -- %s
		return
	fi
	case $words[2] in
`, commandNames(cmds))
	for _, c := range cmds {
		fmt.Fprintf(&b, "\t%s) flags=(%s) ;;\n", c.name, strings.Join(c.flags, " "))
	}
	fmt.Fprint(&b, `	completion) compadd -- bash zsh; return ;;
	esac
	if [[ $PREFIX == -* ]]; then
		compadd -- $flags
	else
		_files
	fi
}
_oauthkit "$@"
`)
	_, err := io.WriteString(w, b.String())
	return err
}
