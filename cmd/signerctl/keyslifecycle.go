package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// cmdKeysLifecycle is `signerctl keys rotate|revoke` over the admin socket.
func (a *app) cmdKeysLifecycle(ctx context.Context, action string, args []string) error {
	fs := a.flagSet("keys "+action, "keys "+action+" --key ID …", lifecycleHelp)
	id := fs.String("key", "", "the key id")
	reason := fs.String("reason", "", "why (revoke; recorded in the audit log)")
	newID := fs.String("new-id", "", "id of the new key (rotate)")
	uri := fs.String("uri", "", "URI of the new key (rotate; omit for file keys to generate one)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *id == "" {
		return usagef("--key is required")
	}
	var (
		out any
		err error
	)
	switch action {
	case "revoke":
		if *reason == "" {
			return usagef("--reason is required")
		}
		out, err = a.admin().RevokeKey(ctx, *id, *reason)
	case "rotate":
		if *newID == "" {
			return usagef("--new-id is required")
		}
		out, err = a.admin().RotateKey(ctx, *id, proto.RotateRequest{NewID: *newID, URI: *uri})
	}
	if err != nil {
		return err
	}
	b, _ := json.Marshal(out)
	fmt.Fprintln(a.stdout, string(b))
	return nil
}

const lifecycleHelp = `keys revoke --key ID --reason TEXT: revoke a key at once (audited; recorded
in the agent's revocation list). keys rotate --key ID --new-id ID [--uri URI]:
make a new key active and the old one verify-only; without --uri a file key
is generated in the agent's state directory.`
