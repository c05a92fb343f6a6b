package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// DefaultDevStateDir is where `signer-agent --dev` keeps its state.
const DefaultDevStateDir = ".signer-agent-dev"

// DevPredicateTypes are the predicate types the dev tenant may sign.
var DevPredicateTypes = []string{
	"stella.ops/sbom@v1",
	"stella.ops/report@v1",
	"stella.ops/vex@v1",
	"stella.ops/export@v1",
	"https://cyclonedx.org/bom",
	"https://spdx.dev/Document",
	"https://openvex.dev/ns/v0.2.0",
	proto.PredicateSLSAProvenanceV1, // export provenance (POST /sign/export)
}

var devConfig = template.Must(template.New("dev").Parse(`# signer-agent dev configuration, written by 'signer-agent --dev'.
# Edits are hot-reloaded. Never use dev mode in production: the keys below
# are plain files generated for this machine only.
version: 1
stateDir: {{.Dir}}
listen:
  api:
    path: {{.Dir}}/api.sock
    mode: "0660"
  admin:
    path: {{.Dir}}/admin.sock
    mode: "0600"
# The dev Authority (authority/issuer.jwk signs tokens; signerctl dev token
# mints them). The request's tenant is the token's tid.
authority:
  issuer: {{.Issuer}}
  installation: {{.Installation}}
  jwksFile: {{.Dir}}/authority/jwks.json
dpop:
  nonceRequired: true
# Offline Proofs-of-Entitlement signed by the dev licensing key
# (licensing/issuer.jwk; signerctl dev token mints them).
entitlement:
  licensingKeysFile: {{.Dir}}/licensing/public.pem
  issuer: {{.LicensingIssuer}}
# Scanner release integrity: the allowlist pre-approves a demo digest.
release:
  allowlistFile: {{.Dir}}/release/allowlist.yaml
plans:
  - name: dev
    maxArtifactBytes: 33554432
    artifactsPerDay: 10000000
tenants:
  - id: dev
    plan: dev
    defaultKey: dev
    predicateTypes:
{{- range .Predicates}}
      - {{.}}
{{- end}}
metrics:
  listen: "off"   # dev mode: GET /metrics on the admin socket only
keys:
  - id: dev
    uri: file:{{.Dir}}/keys/dev.pem
    tenants: [dev]
logging:
  level: info
  format: console
`))

// SetupDev prepares a dev state directory (SPEC §12) and returns the path of
// its config. Existing files are kept, so edits and keys survive restarts.
func SetupDev(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("dev state dir: %w", err)
	}
	for _, d := range []string{abs, filepath.Join(abs, "keys"), filepath.Join(abs, "audit")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("dev state dir: %w", err)
		}
	}
	keyPath := filepath.Join(abs, "keys", "dev.pem")
	if _, err := os.Stat(keyPath); errors.Is(err, os.ErrNotExist) {
		k, err := keys.GenerateFileKey(keyPath, keys.AlgECDSAP256)
		if err != nil {
			return "", fmt.Errorf("dev key: %w", err)
		}
		pub, err := keys.MarshalPublicKeyPEM(k.Public())
		_ = k.Close()
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(abs, "keys", "dev.pub"), pub, 0o644); err != nil {
			return "", fmt.Errorf("dev public key: %w", err)
		}
	} else if err != nil {
		return "", fmt.Errorf("dev key: %w", err)
	}
	if err := devauth.Setup(abs); err != nil {
		return "", err
	}
	cfgPath := filepath.Join(abs, "config.yaml")
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		var buf bytes.Buffer
		if err := devConfig.Execute(&buf, map[string]any{"Dir": abs, "Predicates": DevPredicateTypes,
			"Issuer": devauth.Issuer, "Installation": devauth.Installation, "LicensingIssuer": devauth.LicensingIssuer}); err != nil {
			return "", err
		}
		if err := os.WriteFile(cfgPath, buf.Bytes(), 0o600); err != nil {
			return "", fmt.Errorf("dev config: %w", err)
		}
	}
	return cfgPath, nil
}
