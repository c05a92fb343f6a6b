//go:build faultinject

package main

import (
	"os"
	"strings"
	"syscall"
)

// FaultEnv names the fault a faultinject build injects. The one fault is
// "kill-after-commit[:ROUTE]": the agent SIGKILLs itself right after the
// audit records of a signed answer are durable and before the answer is
// written (on ROUTE only, when given), as a crash at the worst moment
// would. The crash tests (test/e2e) build the binary with -tags
// faultinject; no release build has this file.
const FaultEnv = "SIGNER_AGENT_FAULT"

func faultHook() func(route string) {
	spec, ok := strings.CutPrefix(os.Getenv(FaultEnv), "kill-after-commit")
	if !ok {
		return nil
	}
	only, _ := strings.CutPrefix(spec, ":")
	return func(route string) {
		if only == "" || route == only {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way; write nothing meanwhile
		}
	}
}
