#!/usr/bin/env bash
# test.sh runs every check of the project: gofmt, go vet, staticcheck, the
# whole test suite under the race detector, and a short run of every fuzz
# target. It is the test command of README.md, and what .ci/run runs after
# installing the parts below.
#
# The suite uses real parts where users have them. Missing ones make their
# tests skip with a message saying how to get them (under CI=true they fail):
#   - node >= 20.19 and `npm ci --prefix interop/provider` (oidc-provider)
#   - redis-server                     (Debian: apt-get install redis-server)
#   - dbus + gnome-keyring             (Debian: apt-get install dbus gnome-keyring)
#     the tests then run inside scripts/with-keyring.sh, a private unlocked
#     Secret Service.
#
# FUZZTIME sets how long each fuzz target runs (default 20000x: executions).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step gofmt
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "not gofmt-ed:"
	echo "$unformatted"
	exit 1
fi

step go vet
go vet ./...

step staticcheck
if command -v staticcheck >/dev/null 2>&1; then
	staticcheck ./...
else
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
fi

step "go test -race ./..."
json=$(mktemp "${TMPDIR:-/tmp}/oauthkit-test.XXXXXX.json")
trap 'rm -f "$json"' EXIT
if command -v dbus-run-session >/dev/null 2>&1 && command -v gnome-keyring-daemon >/dev/null 2>&1; then
	scripts/with-keyring.sh go test -race -count=1 -json ./... >"$json" || true
else
	echo "(no dbus/gnome-keyring: keychain tests will skip)"
	go test -race -count=1 -json ./... >"$json" || true
fi
summary=$(go run ./internal/testsummary <"$json") && ok=1 || ok=0
echo "$summary"
[ "$ok" = 1 ] || exit 1

step "fuzz targets (${FUZZTIME:-20000x} each)"
grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
	pkg=./$(dirname "${file#./}")
	for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
		echo "fuzz $pkg $target"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME:-20000x}" "$pkg" >/tmp/oauthkit-fuzz.log 2>&1 || {
			cat /tmp/oauthkit-fuzz.log
			exit 1
		}
	done
done
echo
echo "all checks passed"
echo "$summary" | tail -n 1
