#!/usr/bin/env bash
# make demo: start a dev agent, sign a sample SBOM predicate through the
# agent, verify the result with signerctl and with the real cosign CLI;
# then sign a small export (SPEC §4.4) and verify it as a whole with
# signerctl and file by file with cosign.
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

# An export: a directory of files signed as a whole (docs/exports.md).
EXPORT=$STATE/exp-demo
mkdir -p "$EXPORT/sbom" "$EXPORT/vex"
cp test/fixtures/sbom-predicate.json "$EXPORT/sbom/app.cdx.json"
printf '{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}\n' >"$EXPORT/vex/app.openvex.json"
printf 'demo export\n' >"$EXPORT/README.txt"

echo "==> signerctl sign export ($(find "$EXPORT" -type f | wc -l) files)"
"$BIN/signerctl" sign export \
  --credentials "$STATE/credentials.json" \
  --dir "$EXPORT" --profile offline-kit --created-at 2026-12-03T10:00:00Z \
  --out-manifest "$OUT/export.json" \
  --out-envelope "$OUT/provenance.dsse.json" \
  --out-bundle "$OUT/provenance.bundle.json"

echo "==> signerctl verify export (offline)"
"$BIN/signerctl" verify export --dir "$EXPORT" --manifest "$OUT/export.json" \
  --bundle "$OUT/provenance.bundle.json" --envelope "$OUT/provenance.dsse.json" --key "$STATE/keys/dev.pub"

echo "==> cosign verify-blob-attestation on one file and on export.json (offline)"
for f in "$EXPORT/sbom/app.cdx.json" "$OUT/export.json"; do
  "$BIN/cosign" verify-blob-attestation --key "$STATE/keys/dev.pub" --bundle "$OUT/provenance.bundle.json" \
    --insecure-ignore-tlog --type https://slsa.dev/provenance/v1 "$f"
done

echo "==> a changed export fails verification, naming the file"
printf 'tampered\n' >>"$EXPORT/README.txt"
if "$BIN/signerctl" verify export --dir "$EXPORT" --manifest "$OUT/export.json" \
  --bundle "$OUT/provenance.bundle.json" --key "$STATE/keys/dev.pub"; then
  echo "verify export accepted a modified file" >&2
  exit 1
fi

echo "==> demo OK"
