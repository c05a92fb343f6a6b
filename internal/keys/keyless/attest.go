package keyless

import (
	"context"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// Source is the key source keyless signatures report.
const Source = "keyless"

// ForRequest certifies an ephemeral key (Certify) and returns the
// attest.Signer of one keyless signature, named id (the agent uses
// "keyless"), whose bundle carries the leaf certificate and a timestamp
// from this Signer's TSA, and whose signingIdentity carries the chain,
// identity and issuer. Call release once attest.Sign has returned.
func (s *Signer) ForRequest(ctx context.Context, id string) (signer attest.Signer, release func(), err error) {
	c, err := s.Certify(ctx)
	if err != nil {
		return attest.Signer{}, nil, err
	}
	return attest.Signer{
		ID:          id,
		Source:      Source,
		Key:         c.Key,
		Mode:        proto.ModeKeyless,
		Chain:       c.Chain,
		Timestamper: s,
	}, func() { _ = c.Close() }, nil
}

var _ attest.Timestamper = (*Signer)(nil)
