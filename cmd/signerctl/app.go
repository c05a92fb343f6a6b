package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// version is set at build time: -ldflags "-X main.version=1.2.3".
var version = "dev"

// Exit statuses.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// app is one invocation: where output goes, the environment, and the global
// flags. Commands are its methods so tests can run them in-process.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string

	socket      string // --socket, else SIGNER_AGENT_SOCKET, else the default
	adminSocket string // --admin-socket, else SIGNER_AGENT_ADMIN_SOCKET, else the default
}

// command is one subcommand.
type command struct {
	name     string
	synopsis string
	run      func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"sign", "ask the agent to sign an in-toto statement", (*app).cmdSign},
		{"verify", "verify a bundle or envelope offline", (*app).cmdVerify},
		{"kit", "verify an offline kit offline (kit verify)", (*app).cmdKit},
		{"keys", "list the agent's public keys (keys list)", (*app).cmdKeys},
		{"health", "check the agent's liveness or readiness", (*app).cmdHealth},
		{"bench", "measure signing throughput and latency", (*app).cmdBench},
		{"entitlement", "emergency entitlement bypass (entitlement bypass)", (*app).cmdEntitlement},
		{"audit", "verify, query or tail the audit log", (*app).cmdAudit},
		{"dev", "development helpers (dev token)", (*app).cmdDev},
		{"version", "print the version", (*app).cmdVersion},
	}
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdout: stdout, stderr: stderr, getenv: getenv}
	gfs := flag.NewFlagSet("signerctl", flag.ContinueOnError)
	gfs.SetOutput(io.Discard)
	gfs.StringVar(&a.socket, "socket", "", "api socket `PATH`: a path or unix:///path (default $"+proto.EnvSocket+", else "+proto.DefaultSocket+")")
	gfs.StringVar(&a.adminSocket, "admin-socket", "", "admin socket `PATH` (default $"+proto.EnvAdminSocket+", else "+proto.DefaultAdminSocket+")")
	gfs.Usage = func() {}
	if err := gfs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(stdout, gfs)
			return exitOK
		}
		fmt.Fprintf(stderr, "signerctl: %s (see 'signerctl -h')\n", oneLine(err.Error()))
		return exitUsage
	}
	if a.socket == "" {
		a.socket = getenv(proto.EnvSocket)
	}
	if a.adminSocket == "" {
		a.adminSocket = getenv(proto.EnvAdminSocket)
	}
	if a.adminSocket == "" {
		a.adminSocket = proto.DefaultAdminSocket
	}
	rest := gfs.Args()
	if len(rest) == 0 {
		a.usage(stderr, gfs)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		a.usage(stdout, gfs)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(a, ctx, rest[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK // help was printed
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "signerctl %s: %s (see 'signerctl %s -h')\n", name, oneLine(ue.msg), name)
			return exitUsage
		default:
			fmt.Fprintln(stderr, formatError(err))
			return exitFailure
		}
	}
	fmt.Fprintf(stderr, "signerctl: unknown command %q (see 'signerctl -h')\n", name)
	return exitUsage
}

func (a *app) usage(w io.Writer, gfs *flag.FlagSet) {
	fmt.Fprintln(w, "Usage: signerctl [--socket PATH] [--admin-socket PATH] COMMAND [flags]")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.synopsis)
	}
	fmt.Fprintln(w, "\nGlobal flags:")
	gfs.SetOutput(w)
	gfs.PrintDefaults()
	gfs.SetOutput(io.Discard)
	fmt.Fprintln(w, "\nExit status: 0 success, 1 failure, 2 usage error.")
	fmt.Fprintln(w, "Run 'signerctl COMMAND -h' for a command's flags.")
}

// flags is a subcommand's FlagSet and its help text.
type flags struct {
	*flag.FlagSet
	help func()
}

// flagSet returns the flags of a subcommand whose -h prints synopsis,
// description and flags to stdout.
func (a *app) flagSet(name, synopsis, description string) *flags {
	fs := flag.NewFlagSet("signerctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse reports errors itself
	help := func() {
		w := a.stdout
		fmt.Fprintf(w, "Usage: signerctl %s\n\n%s\n\nFlags:\n", synopsis, strings.TrimSpace(description))
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return &flags{FlagSet: fs, help: help}
}

// parse parses a subcommand's flags. -h prints help and returns
// flag.ErrHelp; other mistakes are usage errors. Positional arguments are
// refused: every input is named by a flag.
func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			f.help()
			return err
		}
		return usagef("%v", err)
	}
	if f.NArg() > 0 {
		return usagef("unexpected argument %q", f.Arg(0))
	}
	return nil
}

// socketFlag lets a subcommand take --socket after its name as well.
func (a *app) socketFlag(fs *flags) {
	fs.StringVar(&a.socket, "socket", a.socket, "api socket `PATH`: a path or unix:///path (default $"+proto.EnvSocket+", else "+proto.DefaultSocket+")")
}

// client returns a client for the api socket.
func (a *app) client() *client.Client {
	return &client.Client{Socket: a.socket}
}

// socketName is the api socket for messages.
func (a *app) socketName() string {
	if a.socket != "" {
		return a.socket
	}
	return proto.DefaultSocket
}

// formatError renders an error as one line. Agent refusals read
// "signerctl: <code>: <detail> (request <id>)".
func formatError(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		msg := string(ce.Code)
		if msg == "" {
			msg = fmt.Sprintf("HTTP %d", ce.Status)
		}
		detail := ce.Detail
		if detail == "" {
			detail = ce.Title
		}
		if detail != "" {
			msg += ": " + detail
		}
		if ce.RequestID != "" {
			msg += " (request " + ce.RequestID + ")"
		}
		return "signerctl: " + oneLine(msg)
	}
	return "signerctl: " + oneLine(err.Error())
}

// oneLine folds line breaks so every error is a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}

func (a *app) cmdVersion(_ context.Context, args []string) error {
	fs := a.flagSet("version", "version", "Print signerctl's version and the Go release it was built with.")
	if err := fs.parse(args); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "signerctl %s %s\n", buildVersion(), runtime.Version())
	return nil
}

// buildVersion is the -ldflags version, else the module version recorded
// by `go install module@version`.
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}
