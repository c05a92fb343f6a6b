// Package fido2 is the FIDO2 key backend: a software ECDSA P-256 key kept
// at rest wrapped ("encrypted") by one or more FIDO2 authenticators, named
// by fido2: URIs.
//
// The authenticator does not sign. Enrolment creates a non-discoverable
// credential with the hmac-secret extension, generates a software P-256
// key, and stores its PKCS#8 encoding encrypted with AES-256-GCM under a
// key derived (HKDF-SHA-256) from the authenticator's hmac-secret output.
// The wrapped key file (see File) records the credential id, the salt, the
// relying party id and the user presence / verification / PIN policy. More
// authenticators can wrap the same key (AddAuthenticator): each adds one
// entry to the file's wraps.
//
// A Key opened from the file (OpenFile) starts locked: Public works, Sign
// fails with an error wrapping keys.ErrBackendUnavailable. Unlock runs one
// hmac-secret assertion and keeps the private key in memory until its TTL
// passes or its signature budget is spent; then the key is locked again
// and its scalar overwritten. Lock and Close do the same at once.
//
// The device code needs cgo and libfido2 and is built only with the fido2
// build tag (device_fido2.go, using github.com/keys-pub/go-libfido2).
// Without the tag OpenDevice returns ErrUnavailable; everything else (the
// file format, wrapping, Key, and SoftAuthenticator for tests) is pure Go
// and always built. See docs/fido2.md for the security model.
package fido2
