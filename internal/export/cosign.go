package export

// CosignMaxFiles is the largest export whose files (and export.json) the
// pinned cosign verifies one by one with verify-blob-attestation: cosign
// v3 verifies bundles with sigstore-go, which refuses to match an artifact
// against a statement of more than 1024 subjects (export.json and 1023
// files). The agent signs larger exports all the same (up to
// proto.MaxExportFiles); they verify with signerctl verify export, which
// checks every subject itself (docs/exports.md §5).
const CosignMaxFiles = 1023
