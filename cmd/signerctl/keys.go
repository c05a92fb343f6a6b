package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
)

const keysHelp = `
List the agent's public keys (GET /api/v1/signer/keys) as a table: id,
algorithm, source, status, tenants, default (marked * for the tenant's
default key) and publicKey hint (base64 SHA-256 of the PKIX key, as in
sigstore bundles). --json prints the response.
`

// cmdKeysList is `signerctl keys list`.
func (a *app) cmdKeysList(ctx context.Context, args []string) error {
	fs := a.flagSet("keys list", "keys list [--json]", keysHelp)
	asJSON := fs.Bool("json", false, "print the response as JSON")
	a.socketFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	resp, err := a.client().Keys(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(a.stdout, resp)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tALGORITHM\tSOURCE\tSTATUS\tTENANTS\tDEFAULT\tHINT")
	for _, k := range resp.Keys {
		def := ""
		if k.Default {
			def = "*"
		}
		tenants := strings.Join(k.Tenants, ",")
		if tenants == "" {
			tenants = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.Source, k.Status, tenants, def, k.PublicKeyHint)
	}
	return tw.Flush()
}
