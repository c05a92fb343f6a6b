// Package trustroot builds and reads what an offline verifier of the
// agent's output trusts:
//
//   - trusted_root.json: a sigstore trusted root (protobuf-specs
//     dev.sigstore.trustroot.v1.TrustedRoot, media type
//     application/vnd.dev.sigstore.trustedroot+json;version=0.1) naming
//     Fulcio's CA, the timestamp authorities, the Rekor v2 logs, and the
//     certificate authorities of keyful keys that come with X.509 chains.
//     cosign (--trusted-root) and sigstore-go read it as it is.
//   - trusted_keys.json: the agent's keys as GET /keys lists them (PEM,
//     validity window, status: active, verify-only or revoked), which the
//     sigstore format has no place for. sigstore's parser refuses unknown
//     fields, so the keys cannot ride inside trusted_root.json without
//     breaking cosign; they live beside it, and Load reads both.
//
// Build assembles both from the agent's keys and the configured
// services; the output is RFC 8785 canonical JSON, so one input always
// gives the same bytes. Verification with them is attest.VerifyTrusted.
package trustroot
