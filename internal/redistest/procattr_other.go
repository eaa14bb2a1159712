//go:build !linux

package redistest

import "os/exec"

// setProcAttr does nothing outside Linux.
func setProcAttr(cmd *exec.Cmd) {}
