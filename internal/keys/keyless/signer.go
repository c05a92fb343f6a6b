package keyless

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Limits of the reuse window and of each exchange.
const (
	MaxReuseWindow = 5 * time.Minute
	// reuseMargin: a reused certificate is never used this close to its
	// end.
	reuseMargin    = 2 * time.Minute
	defaultTimeout = 10 * time.Second
)

// Config configures a Signer.
type Config struct {
	// FulcioURL is Fulcio's base URL (…/api/v2/signingCert is appended).
	FulcioURL string
	// TSAURL is the timestamp endpoint, e.g. https://tsa.example/api/v1/timestamp.
	TSAURL string
	// Identity gives the agent's OIDC identity token.
	Identity TokenSource
	// FulcioChain is Fulcio's CA chain (intermediates, then the root) that
	// leaves must chain to. Nil: read once from Fulcio's
	// /api/v2/trustBundle at the first certificate.
	FulcioChain []*x509.Certificate
	// TSAChain is the timestamp authority's chain (leaf first, root last).
	// When set, every timestamp is verified against it before use.
	TSAChain []*x509.Certificate
	// Timeout bounds each exchange with Fulcio, the TSA and the trust
	// bundle, within the caller's context (default 10 s).
	Timeout time.Duration
	// ReuseWindow lets requests share a key and certificate for this long
	// (0: a new one per request; at most MaxReuseWindow). See the package
	// documentation.
	ReuseWindow time.Duration
	// Transport carries the HTTP exchanges (nil: a transport of the
	// Signer's own, cloned from http.DefaultTransport, whose idle
	// connections Close closes).
	Transport http.RoundTripper
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Signer obtains certificates and timestamps. It is safe for concurrent
// use.
type Signer struct {
	cfg Config

	mu     sync.Mutex
	chain  []*x509.Certificate // Fulcio CA chain, once known
	shared *Certificate        // the reused certificate, if any
}

// Certificate is an ephemeral key certified by Fulcio.
type Certificate struct {
	// Key is the ephemeral ECDSA P-256 key. Close it after signing (a
	// Certificate shared through the reuse window is closed by the Signer
	// instead; closing it there is harmless).
	Key keys.Key
	// Chain is the certificate chain, DER, leaf first and the root last.
	Chain [][]byte
	// Identity is the certificate's subject alternative name (the
	// token's email or URI) and Issuer its OIDC issuer extension.
	Identity string
	Issuer   string
	// NotBefore and NotAfter are the leaf's validity.
	NotBefore, NotAfter time.Time

	shared bool
}

// Close releases the ephemeral key unless the certificate is shared
// through the reuse window.
func (c *Certificate) Close() error {
	if c.shared {
		return nil
	}
	return c.Key.Close()
}

// New checks cfg and returns a Signer.
func New(cfg Config) (*Signer, error) {
	switch {
	case cfg.FulcioURL == "":
		return nil, errors.New("keyless: no Fulcio URL")
	case cfg.TSAURL == "":
		return nil, errors.New("keyless: no timestamp authority URL (keyless signatures must be timestamped)")
	case cfg.Identity == nil:
		return nil, errors.New("keyless: no identity token source")
	case cfg.ReuseWindow < 0 || cfg.ReuseWindow > MaxReuseWindow:
		return nil, fmt.Errorf("keyless: reuse window %s outside 0..%s", cfg.ReuseWindow, MaxReuseWindow)
	}
	for _, u := range []string{cfg.FulcioURL, cfg.TSAURL} {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return nil, fmt.Errorf("keyless: %q is not an http(s) URL", u)
		}
	}
	cfg.FulcioURL = strings.TrimRight(cfg.FulcioURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = newTransport()
	}
	s := &Signer{cfg: cfg}
	if len(cfg.FulcioChain) > 0 {
		s.chain = cfg.FulcioChain
	}
	return s, nil
}

// Close drops a reused key, if any, and closes the idle connections of
// its transport (so that no connection to Fulcio or the TSA, nor its
// goroutines, outlive the Signer). Call it once no request uses the
// Signer any more.
func (s *Signer) Close() error {
	s.mu.Lock()
	c := s.shared
	s.shared = nil
	s.mu.Unlock()
	if t, ok := s.cfg.Transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
	if c != nil {
		return c.Key.Close()
	}
	return nil
}

// Certify returns an ephemeral key and its Fulcio certificate: a new one,
// or the shared one while the reuse window allows.
func (s *Signer) Certify(ctx context.Context) (*Certificate, error) {
	if s.cfg.ReuseWindow > 0 {
		s.mu.Lock()
		c := s.shared
		s.mu.Unlock()
		now := s.cfg.Now()
		if c != nil && now.Before(c.NotBefore.Add(s.cfg.ReuseWindow)) && now.Add(reuseMargin).Before(c.NotAfter) {
			return c, nil
		}
	}
	c, err := s.certify(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.ReuseWindow > 0 {
		// The previous shared certificate is replaced, not closed:
		// requests still signing with it hold it; the collector takes it.
		c.shared = true
		s.mu.Lock()
		s.shared = c
		s.mu.Unlock()
	}
	return c, nil
}

func (s *Signer) certify(ctx context.Context) (*Certificate, error) {
	token, err := s.cfg.Identity.IdentityToken(ctx)
	if err != nil {
		return nil, err
	}
	key, err := keys.NewMemoryKey(keys.AlgECDSAP256)
	if err != nil {
		return nil, fmt.Errorf("keyless: ephemeral key: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = key.Close()
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	f := sign.NewFulcio(&sign.FulcioOptions{
		BaseURL:   s.cfg.FulcioURL,
		Timeout:   -1, // the context bounds it
		Transport: transportFor(cctx, s.cfg.Transport, "Fulcio"),
	})
	der, err := f.GetCertificate(cctx, keypair{key}, &sign.CertificateProviderOptions{IDToken: token})
	if err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.TokenRefused {
			return nil, fail(ErrIdentityUnavailable, se.RetryAfter, fmt.Errorf("Fulcio refused the identity token: %w", se))
		}
		return nil, fail(ErrFulcioUnavailable, statusRetry(err), fmt.Errorf("signing certificate: %w", scrubURLError(err)))
	}
	c, err := s.checkLeaf(ctx, der, key)
	if err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// checkLeaf checks Fulcio's leaf before the key signs anything with it.
func (s *Signer) checkLeaf(ctx context.Context, der []byte, key keys.Key) (*Certificate, error) {
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, fmt.Errorf("parse signing certificate: %w", err))
	}
	if err := cryptoutils.EqualKeys(leaf.PublicKey, key.Public()); err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, errors.New("the signing certificate does not certify the ephemeral key"))
	}
	sum, err := certificate.SummarizeCertificate(leaf)
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, fmt.Errorf("signing certificate: %w", err))
	}
	if sum.SubjectAlternativeName == "" || sum.Issuer == "" {
		return nil, fail(ErrFulcioUnavailable, 0, errors.New("signing certificate has no identity or no OIDC issuer"))
	}
	chain, err := s.caChain(ctx)
	if err != nil {
		return nil, err
	}
	if err := verifyChain(leaf, chain, s.cfg.Now()); err != nil {
		if len(s.cfg.FulcioChain) > 0 {
			return nil, fail(ErrFulcioUnavailable, 0, err)
		}
		// Fulcio may have rotated its CA: read its bundle once more.
		s.mu.Lock()
		s.chain = nil
		s.mu.Unlock()
		if chain, err = s.caChain(ctx); err != nil {
			return nil, err
		}
		if err := verifyChain(leaf, chain, s.cfg.Now()); err != nil {
			return nil, fail(ErrFulcioUnavailable, 0, err)
		}
	}
	out := &Certificate{
		Key:       key,
		Chain:     [][]byte{leaf.Raw},
		Identity:  sum.SubjectAlternativeName,
		Issuer:    sum.Issuer,
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
	}
	for _, c := range chain {
		out.Chain = append(out.Chain, c.Raw)
	}
	return out, nil
}

// verifyChain checks leaf against chain (intermediates, root last) at now
// for code signing. Fulcio marks its SAN critical in some identity types;
// Go does not handle every SAN form, so that extension alone is allowed
// to remain unhandled (as sigstore-go does).
func verifyChain(leaf *x509.Certificate, chain []*x509.Certificate, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no Fulcio CA chain to check the signing certificate against")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(chain[len(chain)-1])
	for _, c := range chain[:len(chain)-1] {
		inter.AddCert(c)
	}
	l := *leaf
	var unhandled []asn1.ObjectIdentifier
	for _, oid := range l.UnhandledCriticalExtensions {
		if !oid.Equal(cryptoutils.SANOID) {
			unhandled = append(unhandled, oid)
		}
	}
	l.UnhandledCriticalExtensions = unhandled
	if _, err := l.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}); err != nil {
		return fmt.Errorf("signing certificate does not chain to Fulcio's CA: %w", err)
	}
	return nil
}

// caChain returns Fulcio's CA chain, reading its trust bundle once.
func (s *Signer) caChain(ctx context.Context) ([]*x509.Certificate, error) {
	s.mu.Lock()
	c := s.chain
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, s.cfg.FulcioURL+"/api/v2/trustBundle", nil)
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, err)
	}
	resp, err := (&http.Client{Transport: transportFor(cctx, s.cfg.Transport, "Fulcio")}).Do(req)
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, statusRetry(err), fmt.Errorf("trust bundle: %w", scrubURLError(err)))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, fmt.Errorf("trust bundle: %w", err))
	}
	chain, err := ParseTrustBundle(body)
	if err != nil {
		return nil, fail(ErrFulcioUnavailable, 0, err)
	}
	s.mu.Lock()
	s.chain = chain
	s.mu.Unlock()
	return chain, nil
}

// ParseTrustBundle reads the first chain of Fulcio's /api/v2/trustBundle
// answer: {"chains":[{"certificates":["PEM", …]}]}.
func ParseTrustBundle(body []byte) ([]*x509.Certificate, error) {
	var tb struct {
		Chains []struct {
			Certificates []string `json:"certificates"`
		} `json:"chains"`
	}
	if err := json.Unmarshal(body, &tb); err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	if len(tb.Chains) == 0 || len(tb.Chains[0].Certificates) == 0 {
		return nil, errors.New("trust bundle: no certificate chain")
	}
	var out []*x509.Certificate
	for _, p := range tb.Chains[0].Certificates {
		rest := []byte(p)
		n := 0
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("trust bundle: %w", err)
			}
			out = append(out, c)
			n++
		}
		if n == 0 {
			return nil, errors.New("trust bundle: an entry is not a PEM certificate")
		}
	}
	return out, nil
}

// Timestamp obtains an RFC 3161 timestamp over sig (the TSA hashes it with
// SHA-256, as sigstore bundles require) and returns the DER response.
// With Config.TSAChain it is verified first; notAfter, when not zero, is
// the end of the certificate the signature was made under, and the
// timestamp must not be later.
func (s *Signer) Timestamp(ctx context.Context, sig []byte, notBefore, notAfter time.Time) ([]byte, error) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	ta := sign.NewTimestampAuthority(&sign.TimestampAuthorityOptions{
		URL:       s.cfg.TSAURL,
		Timeout:   -1,
		Transport: transportFor(cctx, s.cfg.Transport, "timestamp authority"),
	})
	resp, err := ta.GetTimestamp(cctx, sig)
	if err != nil {
		return nil, fail(ErrTSAUnavailable, statusRetry(err), fmt.Errorf("timestamp: %w", scrubURLError(err)))
	}
	if len(s.cfg.TSAChain) > 0 {
		tsa := &root.SigstoreTimestampingAuthority{
			Root:          s.cfg.TSAChain[len(s.cfg.TSAChain)-1],
			Intermediates: intermediates(s.cfg.TSAChain),
			Leaf:          s.cfg.TSAChain[0],
		}
		ts, err := tsa.Verify(resp, sig)
		if err != nil {
			return nil, fail(ErrTSAUnavailable, 0, fmt.Errorf("timestamp does not verify with the configured TSA chain: %w", err))
		}
		if (!notBefore.IsZero() && ts.Time.Before(notBefore.Add(-time.Second))) || (!notAfter.IsZero() && ts.Time.After(notAfter)) {
			return nil, fail(ErrTSAUnavailable, 0, fmt.Errorf("timestamp %s is outside the certificate's validity", ts.Time.UTC().Format(time.RFC3339)))
		}
	}
	return resp, nil
}

func intermediates(chain []*x509.Certificate) []*x509.Certificate {
	if len(chain) <= 2 {
		return nil
	}
	return chain[1 : len(chain)-1]
}
