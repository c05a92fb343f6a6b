package tpm

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the simulator if the test binary dies
// without running its cleanups.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
