package keys

import (
	"crypto/aes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/youmark/pkcs8"
)

// Limits on the key derivation cost an encrypted PKCS#8 file may ask for.
// The pkcs8 library applies none; a crafted file could otherwise make
// opening it take hours or exhaust memory.
const (
	maxPBKDF2Iterations = 10_000_000
	maxScryptMemory     = 1 << 30 // 128·N·r bytes
)

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES128CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// errMalformedPKCS8 reports an EncryptedPrivateKeyInfo that does not parse.
var errMalformedPKCS8 = errors.New("malformed encrypted PKCS#8 structure")

// decryptPKCS8 decrypts an "ENCRYPTED PRIVATE KEY" block (RFC 5958
// EncryptedPrivateKeyInfo, PBES2) with github.com/youmark/pkcs8.
func decryptPKCS8(der, password []byte) (any, error) {
	if err := checkPBES2(der); err != nil {
		return nil, err
	}
	if password == nil {
		return nil, ErrPasswordRequired
	}
	if len(password) == 0 {
		// The library reads an empty password as "not encrypted".
		return nil, ErrWrongPassword
	}
	key, _, err := pkcs8.ParsePrivateKey(der, password)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrWrongPassword, err)
	}
	return key, nil
}

// checkPBES2 validates what the pkcs8 library takes on trust: the scheme is
// PBES2 with PBKDF2 or scrypt at a bounded cost, the cipher is AES-CBC with
// a 16-byte IV, and the ciphertext is whole blocks (the library panics
// otherwise).
func checkPBES2(der []byte) error {
	var info struct {
		Algorithm     pkix.AlgorithmIdentifier
		EncryptedData []byte
	}
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return errMalformedPKCS8
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return fmt.Errorf("%w: encryption scheme %v (only PBES2 is supported)", ErrUnsupportedKey, info.Algorithm.Algorithm)
	}
	var params struct {
		KeyDerivationFunc pkix.AlgorithmIdentifier
		EncryptionScheme  pkix.AlgorithmIdentifier
	}
	if _, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil {
		return errMalformedPKCS8
	}
	switch c := params.EncryptionScheme.Algorithm; {
	case c.Equal(oidAES128CBC), c.Equal(oidAES192CBC), c.Equal(oidAES256CBC):
	default:
		return fmt.Errorf("%w: cipher %v (only AES-CBC is supported)", ErrUnsupportedKey, c)
	}
	var iv []byte
	if _, err := asn1.Unmarshal(params.EncryptionScheme.Parameters.FullBytes, &iv); err != nil || len(iv) != aes.BlockSize {
		return errMalformedPKCS8
	}
	if n := len(info.EncryptedData); n == 0 || n%aes.BlockSize != 0 {
		return errMalformedPKCS8
	}
	kdf := params.KeyDerivationFunc
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		// Same shape as the library's, so both accept the same files.
		var p struct {
			Salt           []byte
			IterationCount int
			PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
		}
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return errMalformedPKCS8
		}
		if prf := p.PRF.Algorithm; len(prf) != 0 && !prf.Equal(oidHMACSHA1) && !prf.Equal(oidHMACSHA256) {
			return fmt.Errorf("%w: PBKDF2 PRF %v (want HMAC-SHA1 or HMAC-SHA256)", ErrUnsupportedKey, prf)
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return fmt.Errorf("%w: PBKDF2 iteration count %d out of range [1, %d]", ErrUnsupportedKey, p.IterationCount, maxPBKDF2Iterations)
		}
	case kdf.Algorithm.Equal(oidScrypt):
		var p struct {
			Salt                     []byte
			CostParameter            int
			BlockSize                int
			ParallelizationParameter int
		}
		if _, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil {
			return errMalformedPKCS8
		}
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		if n < 2 || n&(n-1) != 0 || r < 1 || par < 1 || par > 16 ||
			n > maxScryptMemory/128/r {
			return fmt.Errorf("%w: scrypt parameters N=%d r=%d p=%d out of range", ErrUnsupportedKey, n, r, par)
		}
	default:
		return fmt.Errorf("%w: key derivation function %v (want PBKDF2 or scrypt)", ErrUnsupportedKey, kdf.Algorithm)
	}
	return nil
}

// decryptSigstore decrypts cosign's "ENCRYPTED SIGSTORE PRIVATE KEY" (and
// the older "ENCRYPTED COSIGN PRIVATE KEY"): go-securesystemslib's
// scrypt + NaCl secretbox JSON envelope around a PKCS#8 DER key.
func decryptSigstore(body, password []byte) (any, error) {
	// Tell a malformed file from a wrong password before paying for scrypt.
	var envelope struct {
		KDF        *struct{ Name string } `json:"kdf"`
		Cipher     *struct{ Name string } `json:"cipher"`
		Ciphertext []byte                 `json:"ciphertext"`
	}
	if err := json.Unmarshal(body, &envelope); err != nil || envelope.KDF == nil || envelope.Cipher == nil {
		return nil, errors.New("malformed encrypted sigstore key (want scrypt/secretbox JSON)")
	}
	if envelope.KDF.Name != "scrypt" || envelope.Cipher.Name != "nacl/secretbox" {
		return nil, fmt.Errorf("%w: encrypted sigstore key uses %q/%q (want scrypt/nacl/secretbox)",
			ErrUnsupportedKey, envelope.KDF.Name, envelope.Cipher.Name)
	}
	if password == nil {
		return nil, ErrPasswordRequired
	}
	plain, err := encrypted.Decrypt(body, password)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrWrongPassword, err)
	}
	defer clear(plain)
	key, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, errors.New("decrypted sigstore key is not a PKCS#8 private key")
	}
	return key, nil
}
