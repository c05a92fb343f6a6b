// Command signerctl is the operator and scanner CLI of signer-agent
// (SPEC §14): it asks the agent for signatures, verifies envelopes and
// bundles offline, manages keys, checks health, measures throughput,
// administers the entitlement bypass and reads the audit log.
//
// Usage:
//
//	signerctl [--socket PATH] [--admin-socket PATH] COMMAND [flags]
//	signerctl --version
//
// Commands (the full tree is commands() in commands.go; docs/cli.md is
// generated from the help of each):
//
//	sign, verify, health, bench, version
//	keys list | create pkcs11|tpm | list-tokens | enroll fido2 | unlock | rotate | revoke
//	entitlement bypass
//	audit verify | query | tail | export
//	dev token
//
// Every command and group answers -h and --help (exit 0); `signerctl help
// COMMAND…` is the same.
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
