package keyless

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/stellaops/signer-agent/internal/config"
)

// FromConfig builds a Signer from the agent's keyless configuration (which
// config.Load has validated): chain files are read, the client secret is
// read from its file now (a changed secret needs a reload).
func FromConfig(k config.Keyless) (*Signer, error) {
	if !k.Enabled() {
		return nil, fmt.Errorf("keyless: not configured")
	}
	// One transport for Fulcio, the TSA and the token endpoint, closed
	// with the Signer.
	tr := newTransport()
	cfg := Config{FulcioURL: k.FulcioURL, TSAURL: k.TSAURL, Timeout: k.Timeout, ReuseWindow: k.ReuseWindow, Transport: tr}
	var err error
	if k.FulcioChainFile != "" {
		if cfg.FulcioChain, err = config.ReadCertificateChain(k.FulcioChainFile); err != nil {
			return nil, fmt.Errorf("keyless: fulcioChainFile: %w", err)
		}
	}
	if k.TSAChainFile != "" {
		if cfg.TSAChain, err = config.ReadCertificateChain(k.TSAChainFile); err != nil {
			return nil, fmt.Errorf("keyless: tsaChainFile: %w", err)
		}
	}
	switch id := k.Identity; {
	case id.TokenFile != "":
		cfg.Identity = &FileToken{Path: id.TokenFile}
	case id.ClientCredentials != nil:
		cc := id.ClientCredentials
		b, err := os.ReadFile(cc.ClientSecretFile)
		if err != nil {
			return nil, fmt.Errorf("keyless: clientSecretFile: %w", err)
		}
		secret := strings.TrimRight(string(b), "\r\n")
		clear(b)
		if secret == "" {
			return nil, fmt.Errorf("keyless: clientSecretFile %s is empty", cc.ClientSecretFile)
		}
		cfg.Identity = &ClientCredentials{TokenURL: cc.TokenURL, ClientID: cc.ClientID, ClientSecret: secret, Audience: cc.Audience, Scopes: cc.Scopes,
			HTTPClient: &http.Client{Transport: tr, Timeout: tokenTimeout}}
	default:
		return nil, fmt.Errorf("keyless: no identity configured")
	}
	return New(cfg)
}

// Check is the readiness probe of keyless signing: the identity token is
// there and fresh, and Fulcio's CA chain is known (read from Fulcio's
// trust bundle when not configured, which also shows Fulcio answers). It
// returns the same sentinels as Certify and makes no certificate.
func (s *Signer) Check(ctx context.Context) error {
	if _, err := s.cfg.Identity.IdentityToken(ctx); err != nil {
		return err
	}
	_, err := s.caChain(ctx)
	return err
}
