package main

import (
	"fmt"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// EnvCredentials names a credentials file used when --credentials is not
// given.
const EnvCredentials = "SIGNER_AGENT_CREDENTIALS"

// loadCredentials reads the JSON object `signerctl dev token` prints (SPEC
// §12) with the client's parser: a DPoP-bound OpTok, its private DPoP key,
// and optionally a PoE and scanner digest. Errors never quote the file.
func (a *app) loadCredentials(path string) (*client.Credentials, error) {
	if path == "" {
		path = a.getenv(EnvCredentials)
	}
	if path == "" {
		return nil, nil
	}
	c, err := client.LoadCredentials(path)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", path, err)
	}
	if c.ScannerImageDigest != "" {
		if err := proto.ValidateDigestString(c.ScannerImageDigest); err != nil {
			return nil, fmt.Errorf("credentials %s: scannerImageDigest: %w", path, err)
		}
	}
	return c, nil
}

// applyCredentials fills the request members the credentials provide: poe
// (as a JWT PoE) and scannerImageDigest, unless flags already set them.
func applyCredentials(c *client.Credentials, req *proto.SignRequest) {
	if c == nil {
		return
	}
	if req.PoE == nil && c.PoE != "" {
		req.PoE = &proto.PoE{Format: "jwt", Value: c.PoE}
	}
	if req.ScannerImageDigest == "" {
		req.ScannerImageDigest = c.ScannerImageDigest
	}
}
