package keys

import (
	"context"
	"fmt"
	"os"
)

// Opener opens keys named by URI. Its zero value reads the process
// environment and the real file system; tests replace either.
type Opener struct {
	// Getenv looks up environment variables (password-env=NAME). Nil means
	// os.Getenv.
	Getenv func(name string) string
	// ReadFile reads key and password files. Nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// PKCS11 opens pkcs11: URIs; nil refuses them. Set it to the Open
	// method of a pkcs11.Opener (package keys/pkcs11 imports keys, so keys
	// cannot call it directly).
	PKCS11 func(ctx context.Context, uri string) (Key, error)
	// TPM opens tpm: URIs; nil refuses them. Set it to tpm.Open (package
	// keys/tpm imports keys, so keys cannot call it directly).
	TPM func(ctx context.Context, uri string) (Key, error)
	// KMS opens awskms://, gcpkms://, azurekms:// and hashivault:// URIs;
	// nil refuses them. Set it to kms.Open (package keys/kms).
	KMS func(ctx context.Context, uri string) (Key, error)
	// FIDO2 opens fido2: URIs (locked until unlocked); nil refuses them.
	// Set it to fido2.Open.
	FIDO2 func(ctx context.Context, uri string) (Key, error)
}

// Open opens the key named by uri, dispatching on its scheme. An unknown
// scheme fails with an error wrapping ErrUnsupportedScheme.
func (o *Opener) Open(ctx context.Context, uri string) (Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch scheme := Scheme(uri); scheme {
	case "file":
		return o.openFile(uri)
	case "memory":
		return openMemory(uri)
	case "pkcs11":
		if o.PKCS11 == nil {
			return nil, fmt.Errorf("%w: %q (no PKCS#11 backend configured)", ErrUnsupportedScheme, scheme)
		}
		return o.PKCS11(ctx, uri)
	case "tpm":
		if o.TPM == nil {
			return nil, fmt.Errorf("%w: %q (no TPM backend configured)", ErrUnsupportedScheme, scheme)
		}
		return o.TPM(ctx, uri)
	case "awskms", "gcpkms", "azurekms", "hashivault":
		if o.KMS == nil {
			return nil, fmt.Errorf("%w: %q (no KMS backend configured)", ErrUnsupportedScheme, scheme)
		}
		return o.KMS(ctx, uri)
	case "fido2":
		if o.FIDO2 == nil {
			return nil, fmt.Errorf("%w: %q (no FIDO2 backend configured)", ErrUnsupportedScheme, scheme)
		}
		return o.FIDO2(ctx, uri)
	// Later: "keyless".
	case "":
		return nil, fmt.Errorf("%w: key URI has no scheme (want file:, memory:, …)", ErrUnsupportedScheme)
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedScheme, scheme)
	}
}

func (o *Opener) getenv(name string) string {
	if o.Getenv != nil {
		return o.Getenv(name)
	}
	return os.Getenv(name)
}

func (o *Opener) readFile(name string) ([]byte, error) {
	if o.ReadFile != nil {
		return o.ReadFile(name)
	}
	return os.ReadFile(name)
}
