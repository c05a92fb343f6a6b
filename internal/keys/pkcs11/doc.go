// Package pkcs11 is the PKCS#11 key backend: ECDSA P-256 and P-384 keys
// held by an HSM or token and named by RFC 7512 URIs. It needs cgo (the
// module is loaded with dlopen through github.com/miekg/pkcs11); built
// without cgo, every operation fails with ErrNoCgo.
//
// # URIs
//
//	pkcs11:token=signing;object=release-2025;id=%01%02
//	      ?module-path=/usr/lib/softhsm/libsofthsm2.so
//	      &pin-source=file:/etc/signer-agent/hsm.pin
//	      &max-sessions=8
//
// Path attributes choose the token (token, serial, manufacturer, model,
// slot-id: at least one of token, serial or slot-id) and the private key
// (object = CKA_LABEL and/or id = CKA_ID; type, if given, must be
// private). Query attributes: module-path (required, absolute, a regular
// file), pin-source (file:/absolute/path or /absolute/path; the file holds
// the PIN; trailing line breaks are trimmed), pin-value, max-sessions (session
// pool size, default 8) and slot-id (RFC 7512 puts it in the path; the
// query is accepted too). Values are percent-decoded; unknown or repeated
// attributes are refused.
//
// pin-value is accepted but discouraged: a PIN in the URI travels through
// configuration files, process listings and anything that prints the URI.
// Use pin-source with a file readable only by the agent. No error of this
// package contains a PIN, and URI.String redacts pin-value.
//
// # Keys, sessions and login
//
// Open finds the token, logs in as CKU_USER, finds exactly one private
// key matching object and/or id, and reads its public key from the
// matching public key object (CKA_EC_POINT) or, failing that, the
// matching X.509 certificate, and proves the pair with a test signature.
// ECDSA keys sign SHA-256 digests on both
// curves (see keys.AlgECDSAP384) with CKM_ECDSA; the token's raw r||s is
// returned as ASN.1 DER.
//
// Each Key keeps a pool of up to max-sessions sessions, opened as
// concurrent Sign calls need them, so that signing runs in parallel on the
// token. It logs in once, on the first session; PKCS#11 login state
// belongs to the token and the application, so later sessions, and other
// keys on the same token, share it. Keys never call C_Logout (that would
// log out every key on the token); the token logs the process out when
// its last session closes. The flip side: while a token is logged in, a
// further key on it logs in with CKR_USER_ALREADY_LOGGED_IN and its PIN
// goes unchecked until it has to log in on its own. Sign waits at most Opener.WaitTimeout for a
// free session; SignContext takes the caller's context instead.
//
// # Module registry
//
// A PKCS#11 module is process-global state: C_Initialize and C_Finalize
// apply to every user of it in the process. Each Opener therefore keeps a
// small registry, one module handle per module path, reference-counted by
// the keys (and GenerateKey and ListTokens calls) using it: the module is
// loaded and initialised for the first and finalised and unloaded after
// the last. There is no package-level state; use one Opener per process.
// A second Opener (or other code) that finds the module already
// initialised shares it and never finalises it.
//
// # Recovery
//
// When the token or session is lost (CKR_SESSION_HANDLE_INVALID,
// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN,
// CKR_CRYPTOKI_NOT_INITIALIZED, a key handle gone invalid, …) Sign
// returns an error wrapping keys.ErrBackendUnavailable and drops the
// key's sessions. The next call reconnects: it re-initialises the module
// if it was finalised, finds the token by its selectors again (slot ids
// may change), opens a session, logs in, finds the key and checks that
// its public key is still the one Open read (a different key under the
// same label is refused). Reconnection failures also wrap
// keys.ErrBackendUnavailable. Session handles of an earlier module
// initialisation are never used again.
//
// A login refused for the PIN (incorrect, locked, expired) is final for
// the key: retrying a wrong PIN can lock the token, so every later Sign
// returns the same error (wrapping ErrPINIncorrect and
// keys.ErrBackendUnavailable) without touching the token.
//
// SoftHSM2 reads its token directory only at C_Initialize: a token
// directory removed and restored behind a running process stays
// unavailable until the module is initialised again.
package pkcs11
