// Command signerctl is the operator and scanner CLI of signer-agent
// (SPEC §14): it asks the agent for signatures, verifies envelopes and
// bundles offline, lists keys, checks health and measures throughput.
//
// Usage:
//
//	signerctl [--socket PATH] [--admin-socket PATH] COMMAND [flags]
//
// Commands: sign, verify, keys list, health, bench, version. Run
// `signerctl COMMAND -h` for each command's flags.
//
// Exit status: 0 success, 1 failure (verification failed, the agent
// refused or could not be reached), 2 usage error. Errors are printed to
// stderr as one line; an agent refusal reads
// `signerctl: <code>: <detail> (request <id>)`. signerctl never prints
// tokens, PoEs or key material.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
