// Package release is the release-integrity gate (SPEC §1 step 5, §7): it
// decides whether a scanner image digest is a release signed by a trusted
// release key, and serves the verdict to the gate pipeline and to
// GET /api/v1/signer/verify/referrers.
//
// A Checker consults, in this order, and stops at the first source that
// trusts the digest:
//
//  1. the allowlist (Config.Allowlist, see LoadAllowlist): a listed digest is
//     trusted as is; entries carrying approvedBy/approvedAt are manual
//     approvals and the verdict says so (the caller audits their use);
//  2. the offline directory (Config.OfflineDir, layout below);
//  3. the registry (Config.Repository): the digest's referrers through the
//     OCI Distribution Referrers API (go-containerregistry falls back to the
//     referrers tag schema by itself), then cosign's tag-schema signature tag
//     sha256-<hex>.sig.
//
// Two kinds of signature count, from every source, through the same code:
//
//   - cosign simple-signing signatures: a payload
//     {"critical":{"identity":{...},"image":{"docker-manifest-digest":D},
//     "type":"cosign container image signature"},"optional":{...}} signed by
//     a release key (ECDSA P-256/P-384/P-521, RSA PKCS#1 v1.5 or Ed25519;
//     ECDSA with the curve's hash or SHA-256, as cosign does). D must be the
//     digest being checked. The identity's docker-reference is not compared
//     with Config.Repository, so signatures survive mirroring: the digest is
//     what is trusted.
//   - sigstore bundles v0.3 signed with a public key (DSSE envelopes whose
//     in-toto subjects include the digest, or message signatures over the
//     image manifest), verified with sigstore-go against the release keys
//     with no transparency-log or timestamp requirement. Keyless
//     (certificate) bundles are not trusted: release trust is by key.
//
// Registry errors, no signature, signatures that verify with no trusted
// key, and ambiguous results all give an untrusted verdict whose Reason says
// which. A result is ambiguous when a signature that does verify with a
// trusted key names another digest (a simple-signing payload or a bundle
// whose subject differs, or a referrer manifest whose subject is another
// image): the gate fails closed rather than guess which claim is right.
// Signatures by unknown keys are ignored (anyone who can push may add them),
// but they are named in the Reason when nothing else verified.
//
// # Offline directory layout
//
// Files are named after the digest, "sha256-<hex>" (the digest with ':'
// replaced by '-', lowercase hex):
//
//	DIR/sha256-<hex>.sigstore.json          a sigstore bundle v0.3 (DSSE or message signature, key-signed)
//	DIR/sha256-<hex>.<name>.sigstore.json   more bundles, any <name>
//	DIR/sha256-<hex>.sig                    a cosign signature, base64 (cosign sign --output-signature)
//	DIR/sha256-<hex>.payload                its simple-signing payload (cosign sign --output-payload)
//	DIR/sha256-<hex>.<name>.sig, .payload   more cosign signature/payload pairs
//	DIR/sha256-<hex>.manifest.json          optional: the image manifest (crane manifest IMAGE@DIGEST)
//
// The manifest file must hash to the digest (it is content-addressed, so it
// needs no signature); it supplies the org.opencontainers.image.version
// annotation offline and lets message-signature bundles made with Ed25519
// keys verify against the manifest bytes. A manifest file that does not hash
// to the digest makes the offline verdict untrusted.
//
// # Version
//
// Verdict.Version is, in order: the allowlist entry's version; the image
// manifest's org.opencontainers.image.version annotation; the image config's
// label of the same name (online); the same key in a verified simple-signing
// payload's optional section. CheckVersionWindow compares it with a PoE
// versionWindow.
//
// # Caching and concurrency
//
// Registry and offline-directory verdicts are cached per digest: trusted
// verdicts for Config.CacheTTL (default 10 min), untrusted ones for
// Config.NegativeTTL (default 30 s, never longer than CacheTTL) so that a
// signature pushed just after a denial is seen soon, while a registry outage
// is not hammered by every request. A verdict served from the cache has
// Source "cache" and keeps the source that produced it in OriginalSource and
// its CheckedAt. Allowlist verdicts are not cached (the lookup is a map).
// Concurrent checks of the same digest share one lookup (single flight); the
// lookup runs detached from any one caller's context, bounded by
// Config.LookupTimeout, and a caller whose context ends stops waiting with
// an untrusted, uncached verdict.
package release
