#!/usr/bin/env bash
# test.sh is the test command of README.md and of .ci/run: it sets up what
# the tests need, then runs every check of the project and ends with the
# line "N passed, N failed, N skipped". It exits 1 if anything failed.
#
#  1. set-up (scripts/setup.sh): installs what is missing, each only when
#     missing: the interop provider's npm packages (npm ci), staticcheck
#     v0.8.2 (go install), and, as root on Debian, redis-server,
#     gnome-keyring and dbus (apt-get). Then one preflight line names every
#     real part: node, redis-server, the Secret Service, oidc-provider,
#     staticcheck.
#  2. go test -race -count=1 ./... in the background, inside
#     scripts/with-keyring.sh (a private, unlocked Secret Service) when it
#     starts. The interop package, the longest, starts first; the others
#     share the remaining slots (-p: the number of CPUs, at least 4, since
#     most tests wait on servers and timers rather than compute);
#  3. meanwhile gofmt, go vet, staticcheck, then every fuzz target for
#     FUZZTIME (default 1000x: executions, not seconds, since a time limit
#     can end a run mid-input and fail it with "context deadline exceeded")
#     each, with one fuzzing worker while the tests
#     still run;
#  4. the summary: every package, check and fuzz target, the output of each
#     failure, the reason of each skip, and "N passed, N failed, N skipped".
#
# A part that is still missing makes its tests skip with a message saying
# how to get it; when the environment variable CI is "true" (.ci/run) they
# fail instead. This script never sets CI.
set -euo pipefail
cd "$(dirname "$0")/.."

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
export PATH="$gobin:$PATH"
fuzztime=${FUZZTIME:-1000x}
cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
procs=$((cpus > 4 ? cpus : 4))

work=$(mktemp -d "${TMPDIR:-/tmp}/oauthkit-test.XXXXXX")
tests_pid=""
cleanup() {
	# The tests run in a process group of their own (setsid): stop it
	# whole if this script ends early.
	if [ -n "$tests_pid" ]; then
		kill -TERM -- "-$tests_pid" 2>/dev/null || kill "$tests_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
step() { printf '\n== %s\n' "$*"; }

# check NAME COMMAND... runs a check, prints its output only when it fails,
# and records the result for the summary.
check() {
	local name=$1 t=$SECONDS
	shift
	if "$@" >"$work/check.log" 2>&1; then
		echo "ok   $name ($((SECONDS - t))s)"
		echo "ok $name" >>"$work/checks"
	else
		echo "FAIL $name ($((SECONDS - t))s)"
		sed 's/^/    /' "$work/check.log"
		echo "FAIL $name" >>"$work/checks"
	fi
}

gofmt_clean() {
	local files
	files=$(gofmt -l .)
	[ -z "$files" ] || {
		echo "not gofmt-ed:"
		echo "$files"
		return 1
	}
}

tests_running() { [ -n "$tests_pid" ] && [ ! -e "$work/test.rc" ]; }

step set-up
scripts/setup.sh | tee "$work/setup.txt"
: >"$work/checks"

step "go test -race -count=1 -p $procs ./... (in the background)"
runner=()
if scripts/with-keyring.sh true >/dev/null 2>&1; then
	runner=(scripts/with-keyring.sh)
	echo "inside scripts/with-keyring.sh: a private Secret Service"
else
	echo "no usable Secret Service: the keychain tests skip"
fi
setsid=()
if command -v setsid >/dev/null 2>&1; then
	setsid=(setsid)
fi
${setsid[@]+"${setsid[@]}"} sh -c '
	dir=$1
	shift
	start=$(date +%s)
	rc=0
	"$@" >"$dir/test.json" 2>"$dir/test.stderr" || rc=$?
	echo "$rc $(($(date +%s) - start))" >"$dir/test.rc"
' sh "$work" ${runner[@]+"${runner[@]}"} go test -race -count=1 -p "$procs" -json ./interop ./... &
tests_pid=$!

step "gofmt, go vet, staticcheck"
check gofmt gofmt_clean
check "go vet" go vet ./...
if command -v staticcheck >/dev/null 2>&1; then
	check staticcheck staticcheck ./...
else
	check staticcheck sh -c 'echo "staticcheck not installed: scripts/setup.sh installs it"; exit 1'
fi
# benchmarks/cloudauth is a module of its own (./... does not reach it).
check "go vet benchmarks/cloudauth" sh -c 'cd benchmarks/cloudauth && go vet ./...'

step "fuzz targets, $fuzztime each"
grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=testdata '^func Fuzz' . | sort |
	while read -r file; do
		pkg=./$(dirname "${file#./}")
		for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
			echo "$pkg $target"
		done
	done >"$work/fuzz-targets"
while read -r pkg target; do
	# One fuzzing worker while the tests run, so that they keep a CPU.
	workers=()
	if tests_running; then
		workers=(-parallel 1)
	fi
	check "fuzz $pkg $target" go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" ${workers[@]+"${workers[@]}"} "$pkg"
done <"$work/fuzz-targets"

step "go test"
if tests_running; then
	echo "waiting for it"
fi
wait "$tests_pid" || true
tests_pid=""
read -r rc secs <"$work/test.rc" || true
echo "go test took ${secs:-?}s, exit status ${rc:-?}"
# dbus-daemon cannot raise its file limit in some containers and says so;
# everything else on go test's standard error is shown.
grep -v 'Failed to set fd limit' "$work/test.stderr" || true

step summary
grep '^setup: missing' "$work/setup.txt" || true
echo "wall time $((SECONDS - start))s"
# The summary decides, and so does go test's own exit status: a package
# that never started (go itself failed) is in no summary line.
status=0
go run ./internal/testsummary -checks "$work/checks" <"$work/test.json" || status=1
if [ "${rc:-1}" != 0 ] && [ "$status" = 0 ]; then
	echo "go test exited with status ${rc:-unknown} although no test failed"
	status=1
fi
exit "$status"
