#!/usr/bin/env bash
# setup.sh installs what the test suite needs and does not find, then prints
# one preflight line naming every real part the tests use, found or missing.
# scripts/test.sh runs it first; run it alone to see what a machine has:
#
#	scripts/setup.sh               install what is missing, then the preflight line
#	scripts/setup.sh --no-install  the preflight line only
#
# What it installs, each only when missing:
#   - the npm packages of the interop provider (oidc-provider):
#     `npm ci --prefix interop/provider`, when interop/provider/node_modules
#     is absent or older than package-lock.json;
#   - staticcheck v0.8.2: `go install` into GOBIN (default GOPATH/bin), when
#     absent or another version;
#   - as root where apt-get exists (Debian, Ubuntu): redis-server,
#     gnome-keyring and dbus (with dbus-daemon and dbus-bin where Debian
#     splits them), and zsh (to check the zsh completion script), after one
#     `apt-get update`.
# Not root, it prints the apt-get line to run instead. It never installs
# node: the interop tests need node >= 20.19 (package.json "engines").
#
# A part that stays missing makes its tests skip and say why, or fail when
# the environment variable CI is "true"; this script never sets CI.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1
case "${1:-}" in
"") ;;
--no-install) install=0 ;;
*)
	echo "usage: $0 [--no-install]" >&2
	exit 2
	;;
esac

staticcheck_version=0.8.2
provider=interop/provider

gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
export PATH="$gobin:$PATH"

note() { printf 'setup: %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

# apt_missing prints the Debian packages whose programs are missing.
apt_missing() {
	have redis-server || echo redis-server
	have gnome-keyring-daemon || echo gnome-keyring
	have zsh || echo zsh # the command line's zsh completion is checked with zsh -n
	if ! have dbus-run-session || ! have dbus-send || ! have dbus-daemon; then
		echo dbus
	fi
}

install_system_packages() {
	local pkgs
	pkgs=$(apt_missing | tr '\n' ' ')
	pkgs=${pkgs% }
	[ -n "$pkgs" ] || return 0
	if ! have apt-get; then
		note "missing $pkgs; install them with the system's package manager"
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		note "missing $pkgs; to install: sudo apt-get install -y $pkgs"
		return 0
	fi
	note "apt-get install $pkgs"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get update -qq; then
		note "apt-get update failed; the tests that need $pkgs will skip"
		return 0
	fi
	# Newer Debian releases split dbus-run-session and dbus-send out of
	# dbus; older ones have no such packages.
	local extra=""
	case " $pkgs " in
	*" dbus "*)
		for p in dbus-daemon dbus-bin; do
			apt-cache show "$p" >/dev/null 2>&1 && extra="$extra $p"
		done
		;;
	esac
	# shellcheck disable=SC2086 # word splitting wanted
	if ! apt-get install -y -qq --no-install-recommends $pkgs$extra >/dev/null; then
		note "apt-get install failed; the tests that need $pkgs will skip"
	fi
}

# provider_stale reports whether the provider's npm packages need npm ci.
provider_stale() {
	[ ! -d "$provider/node_modules" ] || [ "$provider/package-lock.json" -nt "$provider/node_modules" ]
}

install_provider() {
	provider_stale || return 0
	if ! have npm; then
		note "npm not found: install node >= 20.19 (with npm), then: npm ci --prefix $provider"
		return 0
	fi
	note "npm ci --prefix $provider"
	if npm ci --prefix "$provider" --no-audit --no-fund --loglevel=error; then
		# npm ci may keep the directory; its time says when it was filled.
		touch "$provider/node_modules"
	else
		note "npm ci failed; the interop tests will skip"
	fi
}

# staticcheck_installed prints the version of the staticcheck in PATH.
staticcheck_installed() {
	have staticcheck || return 0
	staticcheck -version 2>/dev/null | sed -n 's/.*(\([^)]*\)).*/\1/p'
}

install_staticcheck() {
	[ "$(staticcheck_installed)" != "$staticcheck_version" ] || return 0
	note "go install honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"
	if ! GOBIN="$gobin" go install "honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"; then
		note "go install of staticcheck failed"
	fi
}

# version_at_least reports whether version $1 is at least $2 (dotted).
version_at_least() {
	[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]
}

# json_string prints the first "name": "value" value of a JSON file.
json_string() {
	sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$2" | head -n 1
}

preflight() {
	local parts=() v want missing
	parts+=("$(go version | awk '{print $3}')")

	want=$(json_string node "$provider/package.json" | sed 's/^>= *//')
	if have node; then
		v=$(node --version)
		if version_at_least "${v#v}" "$want"; then
			parts+=("node $v (>= $want: yes)")
		else
			parts+=("node $v (>= $want: NO, the interop tests will not run)")
		fi
	else
		parts+=("node MISSING (>= $want needed)")
	fi

	if have redis-server; then
		parts+=("redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')")
	else
		parts+=("redis-server MISSING")
	fi

	missing=""
	for p in dbus-run-session dbus-send gnome-keyring-daemon; do
		have "$p" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		parts+=("Secret Service MISSING (no$missing)")
	else
		v=$(gnome-keyring-daemon --version 2>/dev/null | sed -n 's/^gnome-keyring-daemon: *//p' | head -n 1)
		if scripts/with-keyring.sh true >/dev/null 2>&1; then
			parts+=("Secret Service: dbus-run-session + gnome-keyring-daemon $v")
		else
			parts+=("Secret Service: dbus-run-session + gnome-keyring-daemon $v, FAILS to start (scripts/with-keyring.sh true)")
		fi
	fi

	if [ -f "$provider/node_modules/oidc-provider/package.json" ]; then
		v=$(json_string version "$provider/node_modules/oidc-provider/package.json")
		want=$(json_string oidc-provider "$provider/package.json")
		if [ "$v" = "$want" ]; then
			parts+=("oidc-provider $v")
		else
			parts+=("oidc-provider $v (package.json pins $want: run npm ci --prefix $provider)")
		fi
	else
		parts+=("oidc-provider MISSING")
	fi

	v=$(staticcheck_installed)
	if [ -z "$v" ]; then
		parts+=("staticcheck MISSING")
	elif [ "$v" != "$staticcheck_version" ]; then
		parts+=("staticcheck $v (want $staticcheck_version)")
	else
		parts+=("staticcheck $v")
	fi

	local IFS=';'
	printf 'preflight: %s\n' "${parts[*]}" | sed 's/;/; /g'
}

if [ "$install" = 1 ]; then
	install_system_packages
	install_provider
	install_staticcheck
else
	pkgs=$(apt_missing | tr '\n' ' ')
	[ -z "$pkgs" ] || note "missing ${pkgs% }; to install: sudo apt-get install -y ${pkgs% }"
fi
preflight
