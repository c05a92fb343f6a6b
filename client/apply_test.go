package client_test

import (
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// TestCredentialsApplyFields: what Apply's doc comment promises about the
// PoE and the scanner digest.
func TestCredentialsApplyFields(t *testing.T) {
	key := testKeys(t)[0].key
	old := &proto.PoE{Format: "opaque", Value: "set before"}

	var c client.Client
	(&client.Credentials{OpTok: testToken, DPoPKey: key, PoE: "poe.jwt", ScannerImageDigest: testDigest}).Apply(&c)
	if c.PoE == nil || *c.PoE != (proto.PoE{Format: "jwt", Value: "poe.jwt"}) || c.ScannerImageDigest != testDigest {
		t.Fatalf("Apply with PoE and digest: PoE %+v digest %q", c.PoE, c.ScannerImageDigest)
	}

	c = client.Client{PoE: old, ScannerImageDigest: testDigest}
	(&client.Credentials{OpTok: testToken, DPoPKey: key}).Apply(&c)
	if c.PoE != old {
		t.Errorf("Apply without a PoE replaced the client's: %+v", c.PoE)
	}
	if c.ScannerImageDigest != "" {
		t.Errorf("Apply without a digest kept %q; the doc says it clears it", c.ScannerImageDigest)
	}
}
