package redistest

import (
	"os/exec"
	"syscall"
)

// setProcAttr asks the kernel to kill the server if the test process dies
// without cleaning up (a timeout panic, a SIGKILL).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
