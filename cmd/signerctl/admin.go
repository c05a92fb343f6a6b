package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// admin returns a client for the admin socket.
func (a *app) admin() *client.Admin {
	return &client.Admin{Socket: a.adminSocket, Timeout: 30 * time.Second}
}

// cmdEntitlementBypass is `signerctl entitlement bypass`.
func (a *app) cmdEntitlementBypass(ctx context.Context, args []string) error {
	fs := a.flagSet("entitlement bypass", "entitlement bypass --reason TEXT --for DURATION | --off", bypassHelp)
	reason := fs.String("reason", "", "why (recorded in the audit log)")
	dur := fs.Duration("for", 0, "how long, at most 24h")
	off := fs.Bool("off", false, "end the bypass now")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *off == (*dur > 0) {
		return usagef("give either --for DURATION (with --reason) or --off")
	}
	if !*off && strings.TrimSpace(*reason) == "" {
		return usagef("--reason is required")
	}
	out, err := a.admin().Bypass(ctx, proto.BypassRequest{Reason: *reason, For: dur.String()})
	if err != nil {
		return err
	}
	if !out.Active {
		fmt.Fprintln(a.stdout, "entitlement bypass: off")
	} else {
		fmt.Fprintf(a.stdout, "entitlement bypass: on until %s (%s)\n", out.Until.UTC().Format(time.RFC3339), out.Reason)
	}
	return nil
}

const bypassHelp = `Enable or end the agent's emergency entitlement bypass (admin socket).
While it lasts, sign requests skip the Proof-of-Entitlement check and are
audited with poeState "bypass"; the toggle itself is audited first.`
