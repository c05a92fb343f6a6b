package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// The upstream predicate types a scanner sidecar signs (SPEC §1, §15).
// Verifiers pass the same string to `cosign verify-blob-attestation
// --type`.
const (
	PredicateSBOM   = "stella.ops/sbom@v1"
	PredicateReport = proto.ReportPredicateShort // "stella.ops/report@v1"; needs a policy
	PredicateVEX    = "stella.ops/vex@v1"
)

// maxCount is the largest count that survives RFC 8785 canonicalisation
// (the agent refuses integers beyond ±2^53).
const maxCount = 1 << 53

// SBOMPredicate is the predicate of a stella.ops/sbom@v1 statement: it
// names the SBOM document the scanner produced for the subject image, by
// digest, rather than carrying it (a statement stays small; the SBOM is
// stored next to the image as an OCI referrer and found by its digest).
type SBOMPredicate struct {
	// Format is the SBOM's format and version: "cyclonedx-1.6",
	// "spdx-2.3", … (required).
	Format string `json:"format"`
	// Digest is the "sha256:HEX" of the SBOM document's bytes (required).
	Digest string `json:"digest"`
	// ComponentCount is the number of components the SBOM lists.
	ComponentCount int64 `json:"componentCount"`
}

// ReportPredicate is the predicate of a stella.ops/report@v1 statement:
// the outcome of evaluating the image's findings under a policy. The
// policy itself (proto.Policy: its digest and view set) is required and
// travels at the request's top level; the agent places it in the
// predicate as "policy", so the signature covers the policy the report
// was evaluated under.
type ReportPredicate struct {
	// Format is the report document's format and version (required).
	Format string `json:"format"`
	// Digest is the "sha256:HEX" of the report document (required).
	Digest string `json:"digest"`
	// Verdict is the policy outcome: "pass", "warn" or "fail" (required).
	Verdict string `json:"verdict"`
	// Findings counts findings by severity ("critical", "high", …);
	// omitted when nil.
	Findings map[string]int64 `json:"findings,omitempty"`
}

// VEXPredicate is the predicate of a stella.ops/vex@v1 statement: the VEX
// document stating which vulnerabilities affect the image.
type VEXPredicate struct {
	// Format is the VEX document's format and version: "openvex-0.2.0",
	// "csaf-2.0", "cyclonedx-1.6" (required).
	Format string `json:"format"`
	// Digest is the "sha256:HEX" of the VEX document (required).
	Digest string `json:"digest"`
	// StatementCount is the number of VEX statements in the document.
	StatementCount int64 `json:"statementCount"`
}

// Report verdicts.
const (
	VerdictPass = "pass"
	VerdictWarn = "warn"
	VerdictFail = "fail"
)

// ImageSubject returns the subject for a container image: its reference
// as the name and its "sha256:HEX" manifest digest.
func ImageSubject(name, digest string) (proto.Subject, error) {
	if name == "" {
		return proto.Subject{}, errors.New("signer-agent: image subject: empty name")
	}
	if err := proto.ValidateDigestString(digest); err != nil {
		return proto.Subject{}, fmt.Errorf("signer-agent: image subject: digest: %w", err)
	}
	alg, hex, _ := strings.Cut(digest, ":")
	return proto.Subject{Name: name, Digest: map[string]string{alg: hex}}, nil
}

// SBOMRequest builds the sign request for an SBOM statement about subject.
func SBOMRequest(subject proto.Subject, p SBOMPredicate) (*proto.SignRequest, error) {
	if err := checkDoc("SBOM", p.Format, p.Digest); err != nil {
		return nil, err
	}
	if p.ComponentCount < 0 || p.ComponentCount > maxCount {
		return nil, errors.New("signer-agent: SBOM predicate: componentCount out of range")
	}
	return predicateRequest(subject, PredicateSBOM, p, nil)
}

// ReportRequest builds the sign request for a report statement about
// subject, evaluated under policy.
func ReportRequest(subject proto.Subject, p ReportPredicate, policy proto.Policy) (*proto.SignRequest, error) {
	if err := checkDoc("report", p.Format, p.Digest); err != nil {
		return nil, err
	}
	switch p.Verdict {
	case VerdictPass, VerdictWarn, VerdictFail:
	default:
		return nil, fmt.Errorf("signer-agent: report predicate: verdict %q, want %q, %q or %q", p.Verdict, VerdictPass, VerdictWarn, VerdictFail)
	}
	for sev, n := range p.Findings {
		if sev == "" || n < 0 || n > maxCount {
			return nil, errors.New("signer-agent: report predicate: findings need a severity and a count in range")
		}
	}
	if err := proto.ValidateDigestString(policy.Digest); err != nil {
		return nil, fmt.Errorf("signer-agent: report policy: digest: %w", err)
	}
	return predicateRequest(subject, PredicateReport, p, &policy)
}

// VEXRequest builds the sign request for a VEX statement about subject.
func VEXRequest(subject proto.Subject, p VEXPredicate) (*proto.SignRequest, error) {
	if err := checkDoc("VEX", p.Format, p.Digest); err != nil {
		return nil, err
	}
	if p.StatementCount < 0 || p.StatementCount > maxCount {
		return nil, errors.New("signer-agent: VEX predicate: statementCount out of range")
	}
	return predicateRequest(subject, PredicateVEX, p, nil)
}

func checkDoc(kind, format, digest string) error {
	if format == "" {
		return fmt.Errorf("signer-agent: %s predicate: format is required", kind)
	}
	if err := proto.ValidateDigestString(digest); err != nil {
		return fmt.Errorf("signer-agent: %s predicate: digest: %w", kind, err)
	}
	return nil
}

func predicateRequest(subject proto.Subject, typ string, pred any, policy *proto.Policy) (*proto.SignRequest, error) {
	b, err := json.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: encode %s predicate: %w", typ, err)
	}
	r := &proto.SignRequest{
		Subject:       []proto.Subject{subject},
		PredicateType: typ,
		Predicate:     b,
		Policy:        policy,
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("signer-agent: %s request: %w", typ, err)
	}
	return r, nil
}
