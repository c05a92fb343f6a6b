// Package verify checks signer-agent output offline: a sigstore bundle or
// a standalone DSSE envelope, against a set of trusted public keys, with
// the statement's subject and predicate type as expected. It needs no
// socket and no network.
//
// The keys come from the agent's GET /api/v1/signer/keys answer
// (KeysFromResponse, LoadKeysJSON: each key with its status and validity
// window) or from PEM files (KeysFromPEM: keys without metadata). A key is
// used only while it may vouch for a signature:
//
//   - status "active" and "verify-only" keys verify (a rotated key turns
//     verify-only and its earlier signatures stay valid);
//   - a "revoked" key never verifies, and a public key revoked under any
//     id is refused under every id (revocation wins);
//   - a key with a validity window verifies only inside it, at
//     Options.At (default: now). Keyful output carries no trusted
//     timestamp, so the verifier cannot know when a signature was made;
//     the time is the caller's to give (for example the audit record's)
//     and defaults to the moment of verification;
//   - any other status is refused (fail closed).
//
// Bundles are verified with sigstore-go (as cosign would, offline, with
// --insecure-ignore-tlog), envelopes signature by signature: every
// signature must verify with a usable key.
//
// A TrustedRoot (LoadTrustedRoot: trusted_root.json and trusted_keys.json
// as `signerctl trust export` writes them) is the other Trust: it
// verifies every bundle shape the agent makes — keyless (a Fulcio leaf
// matching Options.Identities, dated by its RFC 3161 timestamp, so it
// verifies after the certificate expired), keyful with a certificate
// chain, keyful with a bare key — and transparency log entries, with the
// same key status and window rules. The package is separate from client
// so that client keeps its small imports.
package verify
