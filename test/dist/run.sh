#!/usr/bin/env bash
# make dist-test: the distribution artifacts, end to end (root).
#
#   1. make dist twice from this commit with one Ed25519 release key, into
#      two directories: every artifact must be byte-identical (reproducible);
#   2. go test -tags dist ./test/dist/: the OCI layout validates and its
#      amd64 rootfs runs `signer-agent --version` and a dev sign under
#      chroot (cosign verifies); the offline kit verifies under unshare -n,
#      a tampered file, a tampered SHA256SUMS and a wrong key fail with exit
#      1, and install.sh installs into a temporary root (idempotent,
#      uninstall, purge);
#   3. test/dist/deb.sh: lintian, and install, run under socket activation,
#      upgrade, remove and purge of the .deb on this machine.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
GO=${GO:-go}
export BIN=${BIN:-$repo/bin}
export SIGNER_AGENT_COSIGN=${SIGNER_AGENT_COSIGN:-$BIN/cosign}
fail() {
	printf 'dist-test: FAIL: %s\n' "$*" >&2
	exit 1
}
say() { printf '==> %s\n' "$*"; }
[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i, chroot, unshare -n)"
command -v openssl >/dev/null || fail "openssl not found (apt-get install openssl)"

work=$(mktemp -d /tmp/sa-dist-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# One release key for both builds (never committed; deleted at exit).
openssl genpkey -algorithm ed25519 -out "$work/release.pem" 2>/dev/null
start=$SECONDS

say "make dist (1/2)"
GO=$GO DIST=$work/a RELEASE_KEY=$work/release.pem bash packaging/dist/dist.sh
say "make dist (2/2)"
GO=$GO DIST=$work/b RELEASE_KEY=$work/release.pem bash packaging/dist/dist.sh

say "reproducibility: comparing the two builds"
n=0
for f in "$work"/a/*; do
	name=$(basename "$f")
	[ -f "$work/b/$name" ] || fail "$name is missing from the second build"
	cmp -s "$f" "$work/b/$name" || fail "$name differs between two builds of one commit"
	n=$((n + 1))
done
[ "$(ls "$work/a" | wc -l)" = "$(ls "$work/b" | wc -l)" ] || fail "the two builds made different sets of files"
[ "$n" -eq 5 ] || fail "expected 5 artifacts (2 .debs, image, kit, release.pub), found $n"
say "reproducible: $n artifacts byte-identical ($((SECONDS - start)) s for both builds)"

say "go test -tags dist ./test/dist/"
"$GO" vet -tags dist ./test/dist/
set +e
SIGNER_AGENT_DIST=$work/a "$GO" test -tags dist -count=1 -v ./test/dist/ 2>&1 | tee "$work/gotest.log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || fail "go test ./test/dist failed (output above)"

say "test/dist/deb.sh"
NFPM=$BIN/nfpm bash test/dist/deb.sh "$work/a"

say "dist-test OK ($((SECONDS - start)) s)"
