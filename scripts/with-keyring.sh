#!/bin/sh
# with-keyring.sh runs a command against a private, unlocked Secret Service,
# so the real-keychain tests of tokencache/keyring can run on a headless
# machine or in CI:
#
#	scripts/with-keyring.sh go test -race -count=1 ./tokencache/keyring
#
# It starts a fresh D-Bus session bus (dbus-run-session), starts
# gnome-keyring-daemon with only its "secrets" component on that bus, and
# unlocks it with a throwaway password fed on stdin. With --unlock, the
# daemon creates the "login" collection on first use and unlocks it, which
# makes it the default collection go-keyring writes to; without it, writes
# fail with "no such object" or wait forever for a password prompt.
#
# The keyring files live in a temporary XDG_DATA_HOME that is removed on
# exit, so the user's own keyrings are neither read nor changed. The
# environment is passed on as it is: run with CI=true (as .ci/run does) for
# tests that fail, rather than skip, when the Secret Service cannot be used.
#
# Needs: dbus (dbus-run-session, dbus-send), gnome-keyring. On Debian/Ubuntu:
#	apt-get install dbus gnome-keyring
# (scripts/setup.sh installs them when run as root). The exit status is the
# command's; 2 when a program above is missing, 1 when the daemon does not
# start.
set -eu

if [ "$#" -eq 0 ]; then
	echo "usage: $0 command [arg...]" >&2
	exit 2
fi

if [ "${WITH_KEYRING_INNER:-}" != 1 ]; then
	for tool in dbus-run-session dbus-send gnome-keyring-daemon; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "$0: $tool not found; install dbus and gnome-keyring" >&2
			exit 2
		fi
	done
	WITH_KEYRING_DATA=$(mktemp -d "${TMPDIR:-/tmp}/with-keyring.XXXXXX")
	export WITH_KEYRING_DATA
	status=0
	WITH_KEYRING_INNER=1 dbus-run-session -- sh "$0" "$@" || status=$?
	rm -rf "$WITH_KEYRING_DATA"
	exit "$status"
fi

# Inside the private session bus. The daemon runs in the foreground, in the
# background of this shell, so that it can be stopped when the command ends
# (a daemonized one may outlive a short session).
log="$WITH_KEYRING_DATA/daemon.out"
printf '%s' 'ci-keyring-password' |
	XDG_DATA_HOME="$WITH_KEYRING_DATA" gnome-keyring-daemon \
		--foreground --unlock --components=secrets >"$log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT INT TERM

# Wait until the daemon owns org.freedesktop.secrets on the bus.
tries=0
until dbus-send --session --print-reply --dest=org.freedesktop.DBus \
	/org/freedesktop/DBus org.freedesktop.DBus.NameHasOwner \
	string:org.freedesktop.secrets 2>/dev/null | grep -q 'boolean true'; do
	tries=$((tries + 1))
	if [ "$tries" -gt 100 ] || ! kill -0 "$daemon" 2>/dev/null; then
		echo "$0: gnome-keyring-daemon did not start:" >&2
		cat "$log" >&2
		exit 1
	fi
	sleep 0.1
done
# The daemon prints NAME=value lines (GNOME_KEYRING_CONTROL, …) to export.
while IFS= read -r line; do
	case "$line" in
	GNOME_KEYRING_*=* | SSH_AUTH_SOCK=*) export "$line" ;;
	esac
done <"$log"

unset WITH_KEYRING_INNER WITH_KEYRING_DATA
status=0
"$@" || status=$?
exit "$status"
