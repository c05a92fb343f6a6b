// Package tpm is the TPM 2.0 key backend: ECDSA P-256 keys that never
// leave the TPM, named by tpm: URIs.
//
//	tpm:/abs/key.blob[?device=/dev/tpmrm0|sim=host:port][&auth-file=/path]
//	tpm:handle=0x81000010[?device=…|sim=…][&auth-file=/path]
//
// A key is either a key blob loaded under the storage root key, or a key
// persisted at a handle. Key blobs are "TSS2 PRIVATE KEY" PEM files, the
// format of tpm2-tss-engine and the OpenSSL tpm2 provider. The SRK is the
// storage key persisted at 0x81000001 if there is one, or else the primary
// created under the owner hierarchy from the TCG provisioning guidance's
// ECC P-256 SRK template (the same key each time; blobs record its parent
// as 0x40000001). Those tools make their 0x40000001 primary from a template
// with an empty unique field, a different key: their key files open here
// too (Open tries that primary when the TCG one fails the integrity
// check), but blobs CreateKey makes under the TCG primary load in those
// tools only if the SRK is persisted at 0x81000001. The owner hierarchy's
// auth value must be empty.
//
// device= names the TPM's character device (default DefaultDevice, the
// kernel resource manager); sim= names an swtpm simulator's TCP command
// port, with its control channel on the next port. auth-file= holds the
// key's auth value (one trailing newline is dropped); with one the key is
// subject to the TPM's dictionary-attack protection, and it signs through
// an HMAC session salted with the SRK whose command parameters are
// AES-128-CFB encrypted. Without one the key has an empty auth value and
// no DA protection.
//
// Keys on one TPM share one connection and one worker goroutine that runs
// their operations one at a time, in arrival order (a queue). Waiting honours the caller's ctx
// (Key.SignContext; Sign waits at most DefaultSignTimeout). Transport
// failures and TPM warnings wrap keys.ErrBackendUnavailable; the next
// operation reconnects and loads the key again, so a key recovers when the
// TPM (or simulator) comes back. Each key blob keeps a transient object
// loaded, as does the SRK primary: behind the kernel resource manager that
// is no limit, but a TPM without one (a simulator, /dev/tpm0) holds only a
// few (swtpm: 3).
//
// CreateKey makes keys for the CLI. Open is the keys.Opener hook for the
// tpm scheme (package keys cannot import its backends):
// keys.Opener{Backends: map[string]keys.OpenFunc{"tpm": tpm.Open}}.
package tpm
