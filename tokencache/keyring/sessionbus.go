package keyring

import (
	"errors"
	"os"
	"strconv"
)

// errNoSessionBus is returned, on systems that use the Secret Service,
// instead of calling go-keyring when there is no D-Bus session bus to talk
// to. Without this check the D-Bus library would run dbus-launch, which
// starts a new session bus (and, through it, a locked keyring daemon) that
// outlives the process: one more pair of stray daemons per run of a
// scheduled job, and still no usable keychain.
var errNoSessionBus = errors.New("no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set and /run/user/UID/bus does not exist")

// sessionBusKnown reports whether a session bus can be found the way the
// D-Bus library finds one before it falls back to launching its own: the
// DBUS_SESSION_BUS_ADDRESS variable, or the systemd user bus socket (or
// address file) in /run/user/UID.
func sessionBusKnown(getenv func(string) string, exists func(string) bool, uid int) bool {
	if a := getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" && a != "autolaunch:" {
		return true
	}
	dir := "/run/user/" + strconv.Itoa(uid)
	return exists(dir+"/bus") || exists(dir+"/dbus-session")
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}
