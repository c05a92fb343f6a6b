package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one command or group of signerctl. A leaf has run; a group
// has sub and answers -h, --help and help with its own usage. A command
// with both (sign, verify) runs itself unless its first argument names one
// of its subcommands.
type command struct {
	name     string
	synopsis string // one line, for the parent's list
	help     string // a group's description (leaves describe themselves in their flagSet)
	run      func(a *app, ctx context.Context, args []string) error
	sub      []command
}

// commands is signerctl's command tree: every command and group, in the
// order help lists them. The CLI reference (docs/cli.md, `make docs`) and
// the help test walk it.
func commands() []command {
	return []command{
		{name: "sign", synopsis: "ask the agent to sign an in-toto statement", run: (*app).cmdSign, sub: []command{
			{name: "export", synopsis: "sign a directory as an export: manifest and SLSA provenance", run: (*app).cmdSignExport},
		}},
		{name: "verify", synopsis: "verify a bundle or envelope offline", run: (*app).cmdVerify, sub: []command{
			{name: "export", synopsis: "verify a whole export directory against its manifest and provenance", run: (*app).cmdVerifyExport},
		}},
		{name: "trust", synopsis: "write the trusted root offline verifiers need", help: trustGroupHelp, sub: []command{
			{name: "export", synopsis: "write trusted_root.json (and trusted_keys.json) for offline verification", run: (*app).cmdTrustExport},
		}},
		{name: "tlog", synopsis: "transparency log handoff", help: tlogGroupHelp, sub: []command{
			{name: "upload", synopsis: "log a bundle in a Rekor v2 log and write it back with its entry", run: (*app).cmdTlogUpload},
		}},
		{name: "kit", synopsis: "verify an offline kit, offline", help: kitGroupHelp, sub: []command{
			{name: "verify", synopsis: "verify an offline kit's signature, checksums and provenance", run: (*app).cmdKitVerify},
		}},
		{name: "keys", synopsis: "list, create, enroll, unlock, rotate and revoke keys", help: keysGroupHelp, sub: []command{
			{name: "list", synopsis: "list the agent's public keys", run: (*app).cmdKeysList},
			{name: "create", synopsis: "create a key in a PKCS#11 token or a TPM and print its URI", help: keysCreateHelp, sub: []command{
				{name: "pkcs11", synopsis: "create an ECDSA key in a PKCS#11 token", run: (*app).cmdKeysCreatePKCS11},
				{name: "tpm", synopsis: "create an ECDSA key under a TPM's storage root key", run: (*app).cmdKeysCreateTPM},
			}},
			{name: "list-tokens", synopsis: "list the tokens of a PKCS#11 module", run: (*app).cmdKeysListTokens},
			{name: "enroll", synopsis: "wrap a key under a hardware authenticator", help: keysEnrollHelp, sub: []command{
				{name: "fido2", synopsis: "wrap a P-256 key under a FIDO2 authenticator's hmac-secret", run: (*app).cmdKeysEnrollFIDO2},
			}},
			{name: "unlock", synopsis: "unlock a FIDO2-wrapped key in the running agent", run: (*app).cmdKeysUnlock},
			{name: "rotate", synopsis: "make a new key active and the old one verify-only", run: func(a *app, ctx context.Context, args []string) error {
				return a.cmdKeysLifecycle(ctx, "rotate", args)
			}},
			{name: "revoke", synopsis: "revoke a key at once", run: func(a *app, ctx context.Context, args []string) error {
				return a.cmdKeysLifecycle(ctx, "revoke", args)
			}},
		}},
		{name: "health", synopsis: "check the agent's liveness or readiness", run: (*app).cmdHealth},
		{name: "bench", synopsis: "measure signing throughput and latency", run: (*app).cmdBench},
		{name: "entitlement", synopsis: "emergency entitlement bypass", help: entitlementGroupHelp, sub: []command{
			{name: "bypass", synopsis: "enable or end the emergency entitlement bypass", run: (*app).cmdEntitlementBypass},
		}},
		{name: "audit", synopsis: "verify, query, tail or export the audit log", help: auditGroupHelp, sub: []command{
			{name: "verify", synopsis: "check the hash chain of the audit log files", run: (*app).cmdAuditVerify},
			{name: "query", synopsis: "print matching audit records", run: (*app).cmdAuditQuery},
			{name: "tail", synopsis: "print the last audit records, optionally following", run: (*app).cmdAuditTail},
			{name: "export", synopsis: "copy closed audit segments out with a manifest", run: (*app).cmdAuditExport},
		}},
		{name: "dev", synopsis: "development helpers", help: devGroupHelp, sub: []command{
			{name: "token", synopsis: "mint dev credentials from a dev agent's state directory", run: (*app).cmdDevToken},
		}},
		{name: "version", synopsis: "print the version", run: (*app).cmdVersion},
	}
}

// isHelp reports whether arg asks a group for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// exec runs command c, named path (e.g. "keys create"), with args. A usage
// error is tagged with the deepest command reached, so that the message
// points at the right help.
func (c command) exec(a *app, ctx context.Context, path string, args []string) error {
	if c.run != nil && len(args) > 0 {
		for _, s := range c.sub {
			if s.name == args[0] {
				return s.exec(a, ctx, path+" "+s.name, args[1:])
			}
		}
	}
	if c.run != nil {
		err := c.run(a, ctx, args)
		if ue, ok := err.(*usageError); ok && ue.cmd == "" {
			ue.cmd = path
		}
		return err
	}
	if len(args) == 0 {
		return &usageError{cmd: path, msg: "missing subcommand (want " + c.subNames() + ")"}
	}
	if isHelp(args[0]) {
		c.usage(a.stdout, path)
		return flag.ErrHelp
	}
	for _, s := range c.sub {
		if s.name == args[0] {
			return s.exec(a, ctx, path+" "+s.name, args[1:])
		}
	}
	return &usageError{cmd: path, msg: fmt.Sprintf("unknown subcommand %q (want %s)", args[0], c.subNames())}
}

func (c command) subNames() string {
	names := make([]string, len(c.sub))
	for i, s := range c.sub {
		names[i] = s.name
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// usage prints a group's help.
func (c command) usage(w io.Writer, path string) {
	fmt.Fprintf(w, "Usage: signerctl %s SUBCOMMAND [flags]\n\n", path)
	if c.help != "" {
		fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(c.help))
	}
	fmt.Fprintln(w, "Subcommands:")
	listCommands(w, c.sub)
	fmt.Fprintf(w, "\nRun 'signerctl %s SUBCOMMAND -h' for a subcommand's flags.\n", path)
}

// listCommands prints names and synopses in aligned columns.
func listCommands(w io.Writer, cmds []command) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.synopsis)
	}
}

// walk calls fn for every command in the tree, parents first, with its
// path ("keys create tpm").
func walk(cmds []command, prefix string, fn func(path string, c command)) {
	for _, c := range cmds {
		path := strings.TrimSpace(prefix + " " + c.name)
		fn(path, c)
		walk(c.sub, path, fn)
	}
}

const keysGroupHelp = `Manage signing keys. 'keys list' asks the agent (api socket); 'keys create',
'keys list-tokens' and 'keys enroll' talk to the device directly; 'keys
unlock', 'keys rotate' and 'keys revoke' go through the admin socket and are
audited.`

const keysCreateHelp = `Create a key in a PKCS#11 token or a TPM and print its URI (for the
config's keys[].uri) and its public key. signerctl talks to the device
directly, not to the agent.`

const keysEnrollHelp = `Wrap a signing key under a hardware authenticator, so that the agent can
use it only once the authenticator unlocks it.`

const entitlementGroupHelp = `Entitlement administration through the admin socket.`

const auditGroupHelp = `Read and ship the audit log. 'audit query' and 'audit tail' go through the
admin socket, or read the log files directly with --dir (on the agent's
host); 'audit verify' always reads the files; 'audit export' asks the agent
to copy closed segments out.`

const devGroupHelp = `Development helpers for a 'signer-agent --dev' state directory. Never use
them in production.`

const trustGroupHelp = `Trust material for offline verifiers: the agent's keys (with validity
windows and status), Fulcio's CA, the timestamp authority and Rekor keys.`

const tlogGroupHelp = `Transparency log handoff (SPEC §9.1): the agent never logs; this submits a
bundle it made to a Rekor v2 log unchanged, as the Attestor does.`

const kitGroupHelp = `Offline kits (docs/offline-kit.md): check a kit's release signature, the
checksum of every file and the build provenance, with no network.`
