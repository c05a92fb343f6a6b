// Package kms opens signing keys held by a cloud key management service or
// HashiCorp Vault, through sigstore's KMS providers:
//
//	awskms://[ENDPOINT]/KEY-ID | ALIAS | ARN   (AWS KMS; SDK credential chain)
//	gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/versions/V]
//	azurekms://VAULT-NAME.vault.azure.net/KEY[/VERSION]
//	hashivault://KEY   (Vault transit; VAULT_ADDR, VAULT_TOKEN, TRANSIT_SECRET_ENGINE_PATH)
//
// Each provider reads its credentials and endpoint the way sigstore (and
// cosign) do, from the environment and the SDK's usual files. Open checks
// the URI against the provider's reference syntax before anything else, so
// a malformed or unknown URI never reaches sigstore's fallback of running a
// sigstore-kms-NAME plugin program.
//
// A Key signs SHA-256 digests with an ECDSA key and returns ASN.1 DER
// signatures. P-256 keys work with every provider. P-384 keys work only with
// Vault: AWS KMS, Cloud KMS and Key Vault pair a P-384 key with SHA-384,
// while the agent signs with SHA-256 whatever the curve (see
// keys.AlgECDSAP384), so Open refuses them with keys.ErrUnsupportedKey.
// Other key types (RSA, Ed25519) are refused too.
//
// Open fetches the public key once; each signature the service returns is
// checked against it, so a key rotated or replaced behind the URI fails
// instead of producing signatures that do not verify. Failures of the
// service (network, credentials, throttling, a bad answer) wrap
// keys.ErrBackendUnavailable. Keys are safe for concurrent use.
//
// The opener plugs into keys.Opener the same way as the PKCS#11 and TPM
// backends: this package imports keys, so keys cannot call it directly.
package kms
