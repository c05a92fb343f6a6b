#!/usr/bin/env bash
# make demo: start a dev agent, sign a sample SBOM predicate through the
# agent, verify the result with signerctl and with the real cosign CLI.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-$PWD/bin}
STATE=$(mktemp -d /tmp/signer-demo.XXXXXX)
OUT=$STATE/out
mkdir -p "$OUT"
cleanup() {
  if [ -n "${AGENT_PID:-}" ]; then kill -TERM "$AGENT_PID" 2>/dev/null || true; wait "$AGENT_PID" 2>/dev/null || true; fi
  rm -rf "$STATE"
}
trap cleanup EXIT

echo "==> starting signer-agent --dev (state in $STATE)"
"$BIN/signer-agent" --dev --state-dir "$STATE" >"$STATE/agent.log" 2>&1 &
AGENT_PID=$!
export SIGNER_AGENT_SOCKET="unix://$STATE/api.sock"
for _ in $(seq 1 100); do
  "$BIN/signerctl" health >/dev/null 2>&1 && break
  sleep 0.1
done
"$BIN/signerctl" health

# The artifact the SBOM describes: any file works; its SHA-256 is the subject.
ARTIFACT=$OUT/app-image.tar
printf 'demo scanner artifact\n' >"$ARTIFACT"

echo "==> minting dev credentials (a DPoP-bound OpTok from the dev Authority)"
"$BIN/signerctl" dev token --state-dir "$STATE" --out "$STATE/credentials.json"

echo "==> signing a CycloneDX SBOM predicate for $(basename "$ARTIFACT")"
"$BIN/signerctl" sign \
  --credentials "$STATE/credentials.json" \
  --predicate test/fixtures/sbom-predicate.json \
  --type stella.ops/sbom@v1 \
  --artifact "$ARTIFACT" \
  --out-envelope "$OUT/envelope.json" \
  --out-bundle "$OUT/bundle.json"

echo "==> keys"
"$BIN/signerctl" keys list

echo "==> signerctl verify (offline)"
"$BIN/signerctl" verify --bundle "$OUT/bundle.json" --key "$STATE/keys/dev.pub" --artifact "$ARTIFACT" --type stella.ops/sbom@v1
"$BIN/signerctl" verify --envelope "$OUT/envelope.json" --key "$STATE/keys/dev.pub" --artifact "$ARTIFACT" --type stella.ops/sbom@v1

echo "==> cosign verify-blob-attestation (offline)"
"$BIN/cosign" verify-blob-attestation --key "$STATE/keys/dev.pub" --bundle "$OUT/bundle.json" \
  --insecure-ignore-tlog --type stella.ops/sbom@v1 "$ARTIFACT"

echo "==> demo OK"
