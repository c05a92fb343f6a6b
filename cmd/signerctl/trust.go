package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

const trustExportHelp = `
Write what an offline verifier trusts:

  --out FILE         a sigstore trusted root (trusted_root.json, media type
                     application/vnd.dev.sigstore.trustedroot+json;version=0.1)
                     naming Fulcio's CA, the timestamp authority, the Rekor v2
                     log, and the certificate authorities of agent keys that
                     come with X.509 chains. cosign --trusted-root and
                     sigstore-go read it as it is.
  --keys-out FILE    the agent's keys with their validity windows and status
                     (active, verify-only, revoked), which the sigstore format
                     cannot hold (default: trusted_keys.json beside --out).

Keys come from the running agent (--keys-from-agent: GET /api/v1/signer/keys
on the api socket) and/or --keys files: a GET /keys response or
trusted_keys.json (JSON), or PEM public keys (each block becomes an active key
named after the file). Output is canonical JSON (RFC 8785); files are written
atomically.
`

func (a *app) cmdTrustExport(ctx context.Context, args []string) error {
	fs := a.flagSet("trust export", "trust export --out trusted_root.json [--keys-out FILE] [--keys-from-agent | --keys FILE...] [--fulcio-chain PEM [--fulcio-url URL]] [--tsa-chain PEM [--tsa-url URL]] [--rekor-key PEM --rekor-url URL [--rekor-origin HOST]]", trustExportHelp)
	var keyFiles stringList
	var (
		out         = fs.String("out", "", "trusted root `FILE` to write (trusted_root.json)")
		keysOut     = fs.String("keys-out", "", "agent keys `FILE` to write (default: trusted_keys.json beside --out)")
		fromAgent   = fs.Bool("keys-from-agent", false, "read the keys from the running agent (api socket)")
		fulcioChain = fs.String("fulcio-chain", "", "Fulcio CA chain `PEM` file (intermediates, then the root)")
		fulcioURL   = fs.String("fulcio-url", "", "Fulcio `URL` recorded in the trusted root")
		tsaChain    = fs.String("tsa-chain", "", "timestamp authority chain `PEM` file (signing certificate first, root last)")
		tsaURL      = fs.String("tsa-url", "", "timestamp authority `URL` recorded in the trusted root")
		rekorKey    = fs.String("rekor-key", "", "Rekor v2 log public key `PEM` file")
		rekorURL    = fs.String("rekor-url", "", "Rekor v2 log base `URL`")
		rekorOrigin = fs.String("rekor-origin", "", "Rekor checkpoint origin `HOST` (default: the host of --rekor-url)")
		rekorStart  = fs.String("rekor-start", "", "when the log key became valid, `RFC3339` (default: the Unix epoch)")
	)
	fs.Var(&keyFiles, "keys", "agent keys `FILE`: JSON (GET /keys, trusted_keys.json) or PEM public keys (repeatable)")
	a.socketFlag(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	if (*rekorKey == "") != (*rekorURL == "") {
		return usagef("give --rekor-key and --rekor-url together")
	}
	if *fulcioURL != "" && *fulcioChain == "" || *tsaURL != "" && *tsaChain == "" {
		return usagef("--fulcio-url and --tsa-url need their --fulcio-chain and --tsa-chain")
	}
	var in trustroot.Input
	if *fromAgent {
		ks, err := a.client().Keys(ctx)
		if err != nil {
			return fmt.Errorf("keys from the agent at %s: %w", a.socketName(), err)
		}
		in.Keys = append(in.Keys, ks.Keys...)
	}
	for _, f := range keyFiles {
		ks, err := readKeyInfos(f)
		if err != nil {
			return err
		}
		in.Keys = append(in.Keys, ks...)
	}
	var err error
	if *fulcioChain != "" {
		if in.FulcioChain, err = config.ReadCertificateChain(*fulcioChain); err != nil {
			return fmt.Errorf("--fulcio-chain %s: %w", *fulcioChain, err)
		}
		in.FulcioURL = *fulcioURL
	}
	if *tsaChain != "" {
		if in.TSAChain, err = config.ReadCertificateChain(*tsaChain); err != nil {
			return fmt.Errorf("--tsa-chain %s: %w", *tsaChain, err)
		}
		in.TSAURL = *tsaURL
	}
	if *rekorKey != "" {
		b, err := os.ReadFile(*rekorKey)
		if err != nil {
			return fmt.Errorf("--rekor-key: %w", err)
		}
		pubs, err := parsePublicKeysPEM(b)
		if err != nil || len(pubs) != 1 {
			return fmt.Errorf("--rekor-key %s: want one PEM PUBLIC KEY block", *rekorKey)
		}
		u, err := url.Parse(*rekorURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return usagef("--rekor-url: want an http(s) URL")
		}
		l := trustroot.RekorLog{URL: strings.TrimRight(*rekorURL, "/"), Origin: *rekorOrigin, PublicKey: pubs[0]}
		if l.Origin == "" {
			l.Origin = u.Hostname()
		}
		if *rekorStart != "" {
			if l.Start, err = time.Parse(time.RFC3339, *rekorStart); err != nil {
				return usagef("--rekor-start: %v", err)
			}
		}
		in.Rekor = append(in.Rekor, l)
	}
	if len(in.Keys) == 0 && len(in.FulcioChain) == 0 && len(in.Rekor) == 0 {
		return usagef("nothing to export: give --keys-from-agent, --keys, --fulcio-chain or --rekor-key")
	}
	m, err := trustroot.Build(in)
	if err != nil {
		return err
	}
	rootJSON, err := m.MarshalRoot()
	if err != nil {
		return err
	}
	keysJSON, err := m.MarshalKeys()
	if err != nil {
		return err
	}
	kout := *keysOut
	if kout == "" {
		kout = trustroot.KeysPathFor(*out)
	}
	if err := trustroot.WriteFile(*out, rootJSON); err != nil {
		return err
	}
	if err := trustroot.WriteFile(kout, keysJSON); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Wrote %s (%d certificate authorities, %d timestamp authorities, %d transparency logs) and %s (%d keys)\n",
		*out, len(m.Root.FulcioCertificateAuthorities()), len(m.Root.TimestampingAuthorities()), len(m.Root.RekorLogs()), kout, len(m.Keys))
	return nil
}

// readKeyInfos reads a --keys file: JSON with a "keys" array (a GET /keys
// response or trusted_keys.json), or PEM public keys.
func readKeyInfos(path string) ([]proto.KeyInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--keys: %w", err)
	}
	if t := strings.TrimSpace(string(b)); strings.HasPrefix(t, "{") {
		var f struct {
			Keys []proto.KeyInfo `json:"keys"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("--keys %s: %w", path, err)
		}
		if len(f.Keys) == 0 {
			return nil, fmt.Errorf("--keys %s: no keys", path)
		}
		return f.Keys, nil
	}
	pubs, err := parsePublicKeysPEM(b)
	if err != nil {
		return nil, fmt.Errorf("--keys %s: %w", path, err)
	}
	if len(pubs) == 0 {
		return nil, fmt.Errorf("--keys %s: no PEM PUBLIC KEY block", path)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	var out []proto.KeyInfo
	for i, pub := range pubs {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return nil, err
		}
		id := base
		if len(pubs) > 1 {
			id = fmt.Sprintf("%s-%d", base, i+1)
		}
		alg, _, _ := keys.Algorithm(pub)
		out = append(out, proto.KeyInfo{ID: id, Algorithm: alg, Status: proto.KeyStatusActive,
			PublicKey: string(pemBlock("PUBLIC KEY", der))})
	}
	return out, nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
