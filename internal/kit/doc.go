// Package kit builds and verifies the signer-agent offline kit (SPEC §13):
// a directory, or a gzip-compressed tar of one, whose SHA256SUMS lists
// every file in it, with a sigstore bundle over SHA256SUMS and a signed
// SLSA v1 provenance of the build, both made through the agent with the
// release key.
//
// Verification (Verify) runs with no network and no agent:
//
//  1. the bundle SHA256SUMS.sigstore.json verifies with one of the given
//     public keys, carries predicate type ChecksumsPredicateType and names
//     SHA256SUMS (by digest) as a subject;
//  2. every line of SHA256SUMS matches a file of the kit, and every file of
//     the kit except SHA256SUMS and its bundle is listed;
//  3. the provenance bundle verifies with the same keys, is a valid SLSA v1
//     provenance, and every subject that names a kit file has that file's
//     digest; every .deb and every file under bin/ is such a subject.
//
// The first mismatch ends the verification; its error names the file.
// The kit is read as it is found: a tarball is streamed and hashed, never
// extracted, and only regular files and directories are accepted.
package kit

// Well-known names inside a kit, relative to its top directory.
const (
	// SumsFile lists "HEX  PATH" for every other file of the kit.
	SumsFile = "SHA256SUMS"
	// SumsBundleFile is the sigstore bundle whose statement names SumsFile.
	SumsBundleFile = "SHA256SUMS.sigstore.json"
	// ProvenanceFile is the sigstore bundle of the SLSA v1 provenance.
	ProvenanceFile = "provenance.sigstore.json"
)

// Predicate types of the two signed statements.
const (
	// ChecksumsPredicateType is the predicate type of the statement over
	// SHA256SUMS (predicate: Checksums).
	ChecksumsPredicateType = "https://github.com/stellaops/signer-agent/offline-kit/checksums/v1"
	// ProvenancePredicateType is SLSA provenance v1.
	ProvenancePredicateType = "https://slsa.dev/provenance/v1"
)

// Checksums is the predicate of the statement over SHA256SUMS.
type Checksums struct {
	// Kit is the kit's top directory name, e.g.
	// signer-agent-offline-kit_1.2.3.
	Kit string `json:"kit"`
	// Version is the signer-agent version the kit ships.
	Version string `json:"version"`
	// SourceCommit is the git commit the kit was built from.
	SourceCommit string `json:"sourceCommit"`
}
