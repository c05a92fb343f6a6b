package keys

import (
	"context"
	"fmt"
	"os"
)

// OpenFunc opens a key named by a URI of one scheme: every backend ends as
// a Key (a crypto.Signer with Close), whatever holds it.
type OpenFunc func(ctx context.Context, uri string) (Key, error)

// Opener opens keys named by URI. Its zero value opens file: and memory:
// keys, reading the process environment and the real file system; tests
// replace either. Other schemes are opened by the Backends registered for
// them.
type Opener struct {
	// Getenv looks up environment variables (password-env=NAME). Nil means
	// os.Getenv.
	Getenv func(name string) string
	// ReadFile reads key and password files. Nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// Backends maps a URI scheme ("pkcs11", "tpm", "fido2", "awskms", …)
	// to the function that opens it. The backend packages import keys, so
	// keys cannot call them itself: the agent registers them (see
	// agent.DefaultBackends). A scheme with no entry is refused with
	// ErrUnsupportedScheme.
	Backends map[string]OpenFunc
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
	case "":
		return nil, fmt.Errorf("%w: key URI has no scheme (want file:, memory:, …)", ErrUnsupportedScheme)
	default:
		open, ok := o.Backends[scheme]
		if !ok || open == nil {
			return nil, fmt.Errorf("%w: %q (no backend registered for it)", ErrUnsupportedScheme, scheme)
		}
		return open(ctx, uri)
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
