package main

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

const healthHelp = `
Check the agent: liveness (GET /healthz) by default, readiness (GET /readyz:
keys unlocked, trust roots loaded) with --ready. Prints the status, the
agent's version and its checks; exits 1 when the agent is not healthy or not
ready, or cannot be reached. --admin asks the admin socket instead of the
api socket.
`

// cmdHealth is `signerctl health`.
func (a *app) cmdHealth(ctx context.Context, args []string) error {
	fs := a.flagSet("health", "health [--ready] [--admin] [--json]", healthHelp)
	ready := fs.Bool("ready", false, "check readiness instead of liveness")
	admin := fs.Bool("admin", false, "ask the admin socket")
	asJSON := fs.Bool("json", false, "print the health document as JSON")
	a.socketFlag(fs)
	fs.StringVar(&a.adminSocket, "admin-socket", a.adminSocket, "admin socket `PATH` (with --admin)")
	if err := fs.parse(args); err != nil {
		return err
	}
	c := a.client()
	if *admin {
		c = &client.Client{Socket: a.adminSocket}
	}
	var h *proto.Health
	var err error
	if *ready {
		h, err = c.Ready(ctx)
	} else {
		h, err = c.Health(ctx)
	}
	if h != nil {
		if *asJSON {
			if perr := printJSON(a.stdout, h); perr != nil {
				return errors.Join(err, perr)
			}
		} else {
			printHealth(a, h)
		}
	}
	return err
}

func printHealth(a *app, h *proto.Health) {
	line := h.Status
	if h.Version != "" {
		line += " (agent " + h.Version + ")"
	}
	fmt.Fprintln(a.stdout, line)
	names := make([]string, 0, len(h.Checks))
	for n := range h.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(a.stdout, "  %s: %s\n", n, h.Checks[n])
	}
}
