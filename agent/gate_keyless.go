package agent

import (
	"fmt"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/proto"
)

// keylessPolicy applies the tenant's keyless policy (tenants[].keyless,
// internal/config/keylesspolicy.go) to the request's mode, as part of the
// policy gate:
//
//   - options.mode keyless: refused (key_unavailable) unless the policy is
//     allowed or required; otherwise the request signs keylessly.
//   - no options.mode: keyful, except for a tenant whose policy is
//     required, where it signs keylessly (the tenant's default is
//     keyless) — unless it names key ids, which asks for keyful signing.
//   - keyful (options.mode keyful, or key ids without options.mode
//     keyless) for a tenant whose policy is required: refused
//     (key_unavailable).
//
// Keyless with key ids is a multi-signature (SPEC §4.1, §8): one keyless
// signature first, then one per named key, all or nothing, and no
// fallback (the caller chose the keys). On keyless it sets rc.keyless and
// records the keyless signature in the audit record (its fingerprint is
// known once the ephemeral key exists).
func keylessPolicy(rc *requestContext) *Denial {
	policy := rc.snap.cfg.Tenant(rc.tenant).KeylessPolicy()
	explicit := rc.req.Options != nil && rc.req.Options.Mode != ""
	want := rc.req.Mode() == proto.ModeKeyless ||
		(!explicit && policy == config.KeylessRequired && len(rc.req.KeyIDs()) == 0)
	switch {
	case want && policy == config.KeylessOff:
		return deny(proto.CodeKeyUnavailable, "keyless signing is not allowed for this tenant",
			fmt.Sprintf("keyless requested; tenant %q has keyless: off", rc.tenant))
	case want && rc.snap.keyless == nil:
		// Validation ties allowed/required to a keyless block: a bug.
		return deny(proto.CodeKeyUnavailable, "keyless signing is not configured on this agent",
			"keyless requested; no keyless block in the configuration")
	case !want && policy == config.KeylessRequired:
		return deny(proto.CodeKeyUnavailable, "this tenant signs keylessly only; send options.mode keyless (or no mode and no keyIds)",
			fmt.Sprintf("keyful requested; tenant %q has keyless: required", rc.tenant))
	case !want:
		return nil
	}
	rc.keyless = rc.snap.keyless
	rc.rec.KeyIDs = append(rc.rec.KeyIDs, config.KeylessKeyID)
	rc.rec.KeySources = append(rc.rec.KeySources, keyless.Source)
	rc.rec.KeyFingerprints = append(rc.rec.KeyFingerprints, "")
	return nil
}
