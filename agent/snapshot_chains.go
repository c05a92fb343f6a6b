package agent

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
)

// certificateChainer is a key backend that keeps X.509 certificates next
// to its keys: a PKCS#11 key with a certificate object on its token
// ((*pkcs11.Key).CertificateChain). A key without one returns nil.
type certificateChainer interface {
	CertificateChain(ctx context.Context) ([][]byte, error)
}

// maxKeyChain bounds a key's certificate chain.
const maxKeyChain = 8

// loadKeyChains gives each opened key its certificate chain: from its
// certificateChainFile when one is configured (it takes precedence over
// the token's certificates), else from the backend (certificateChainer).
// Keys without either sign with a bare public key. A backend that stops
// answering while its certificates are read (keys.ErrBackendUnavailable)
// makes the key pending, as openKeys does. A chain that does not fit fails
// the load: the leaf must certify the key, each certificate
// must be signed by the next, and a leaf with extended key usages must
// allow code signing (verifiers check it). A leaf outside its validity
// does not fail the load; the key signs nothing while it is (usable).
func loadKeyChains(ctx context.Context, cfg *config.Config, ks map[string]*keyEntry) error {
	for _, kc := range cfg.Keys {
		e := ks[kc.ID]
		if e == nil || e.key == nil {
			continue // pending: its chain is read when it opens
		}
		var chain [][]byte
		from := "certificateChainFile"
		switch c, ok := e.key.(certificateChainer); {
		case kc.CertificateChainFile != "":
			certs, err := config.ReadCertificateChain(kc.CertificateChainFile)
			if err != nil {
				return fmt.Errorf("key %q: certificateChainFile: %w", kc.ID, err)
			}
			chain = attest.DERChain(certs)
		case ok:
			from = "certificates on the token"
			var err error
			chain, err = c.CertificateChain(ctx)
			if errors.Is(err, keys.ErrBackendUnavailable) {
				// The token went away between opening the key and reading
				// its certificates: the key is pending, as if it had not
				// opened (a key reused from the previous snapshot is
				// closed with that snapshot).
				if !e.reused {
					_ = e.key.Close()
				}
				ks[kc.ID] = &keyEntry{cfg: kc, source: e.source, pending: fmt.Errorf("key %q: read certificates: %w", kc.ID, err)}
				continue
			}
			if err != nil {
				return fmt.Errorf("key %q: %w", kc.ID, err)
			}
		}
		if len(chain) == 0 {
			continue
		}
		leaf, err := checkKeyChain(e, chain)
		if err != nil {
			return fmt.Errorf("key %q: %s: %w", kc.ID, from, err)
		}
		e.chain, e.leaf = chain, leaf
	}
	return nil
}

// checkKeyChain checks that chain (DER, leaf first) fits the key and
// returns its parsed leaf.
func checkKeyChain(e *keyEntry, chain [][]byte) (*x509.Certificate, error) {
	if len(chain) > maxKeyChain {
		return nil, fmt.Errorf("%d certificates, at most %d", len(chain), maxKeyChain)
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	if err := cryptoutils.EqualKeys(leaf.PublicKey, e.key.Public()); err != nil {
		return nil, errors.New("the leaf certificate does not certify the key")
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return nil, fmt.Errorf("certificate %d (%s) is not signed by certificate %d (%s): %w",
				i, certs[i].Subject.CommonName, i+1, certs[i+1].Subject.CommonName, err)
		}
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, errors.New("the leaf certificate's extended key usage does not allow code signing")
	}
	return leaf, nil
}

// certificateProblem says why the key's leaf certificate does not allow
// signing at now ("" when it does, or the key has none): a bundle made
// outside the leaf's validity carries no timestamp to vouch for it and
// would not verify.
func (k *keyEntry) certificateProblem(now time.Time) string {
	switch {
	case k.leaf == nil:
		return ""
	case now.Before(k.leaf.NotBefore):
		return "key's certificate is not valid yet (notBefore " + k.leaf.NotBefore.UTC().Format(time.RFC3339) + ")"
	case now.After(k.leaf.NotAfter):
		return "key's certificate has expired (notAfter " + k.leaf.NotAfter.UTC().Format(time.RFC3339) + ")"
	}
	return ""
}
