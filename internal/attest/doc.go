// Package attest turns a validated sign request into signed output: an
// in-toto Statement v1 serialised as RFC 8785 canonical JSON, a DSSE envelope
// with one signature per key (go-securesystemslib/dsse), and one sigstore
// bundle v0.3 per signature (protobuf-specs types), plus the digests the
// response and the audit log carry. It also verifies that output offline with
// sigstore-go, for signerctl verify and for tests.
package attest
