package sigstack

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill a server when the test process
// dies without running its cleanups (a test timeout's panic, a kill).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
