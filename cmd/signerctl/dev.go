package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/stellaops/signer-agent/internal/devauth"
)

// cmdDevToken is `signerctl dev token`: mint dev credentials from the dev
// Authority of a `signer-agent --dev` state directory.
func (a *app) cmdDevToken(ctx context.Context, args []string) error {
	fs := a.flagSet("dev token", "dev token --state-dir DIR [--tenant T] [--scope S] [--ttl D] [--out FILE]", devHelp)
	stateDir := fs.String("state-dir", ".signer-agent-dev", "the dev agent's state `DIR`")
	tenant := fs.String("tenant", devauth.Tenant, "tenant (tid)")
	inst := fs.String("installation", devauth.Installation, "installation (inst)")
	scope := fs.String("scope", devauth.Scope, "space-separated scopes")
	ttl := fs.Duration("ttl", 5*time.Minute, "token lifetime")
	out := fs.String("out", "", "write the credentials to `FILE` (mode 0600) instead of stdout")
	if err := fs.parse(args); err != nil {
		return err
	}
	c, err := devauth.Mint(*stateDir, devauth.Options{Tenant: *tenant, Installation: *inst, Scope: *scope, TTL: *ttl})
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out != "" {
		return os.WriteFile(*out, b, 0o600)
	}
	_, err = a.stdout.Write(b)
	return err
}

const devHelp = `Mint development credentials from the dev Authority that
'signer-agent --dev' keeps in its state directory: a DPoP-bound OpTok (issuer
https://authority.dev.invalid, audience signer) and its DPoP private key, as
the JSON object 'signerctl sign --credentials FILE' and the client read. The
output contains a bearer secret: keep it out of logs and shared files.`
