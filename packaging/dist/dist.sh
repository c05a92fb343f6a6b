#!/usr/bin/env bash
# make dist (SPEC §13): builds, under dist/,
#   signer-agent_<version>_amd64.deb, signer-agent_<version>_arm64.deb
#   signer-agent_<version>_oci.tar                (OCI layout, multi-arch index)
#   signer-agent-offline-kit_<version>.tar.gz     (signed SHA256SUMS + SLSA provenance)
#   release.pub                                   (the public key the kit was signed with)
#
# Reproducible: the version comes from git (version.sh), every timestamp is
# SOURCE_DATE_EPOCH (the commit time), Go builds use -trimpath and an empty
# build id, archives are sorted with fixed owners and modes, and the release
# key is Ed25519 (deterministic signatures). Two runs of one commit with the
# same RELEASE_KEY give byte-identical artifacts.
#
# The kit's SHA256SUMS and provenance are signed THROUGH THE AGENT: the
# just-built signer-agent runs in dev mode in a temporary state directory
# whose signing key (keys/dev.pem) is the release key, and signerctl sign
# asks it for the two signatures.
#
# Environment:
#   RELEASE_KEY=path   unencrypted PEM private key (Ed25519 preferred) that
#                      signs the kit; unset: a throwaway key is generated and
#                      the kit is good for local tests only
#   VERSION            override the version from git
#   DIST               output directory (default ./dist)
#   GO, BIN, NFPM      go command, bin/ directory, nfpm binary
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo"
GO=${GO:-go}
BIN=${BIN:-$repo/bin}
DIST=${DIST:-$repo/dist}
NFPM=${NFPM:-$BIN/nfpm}
DEB_MAINTAINER=${DEB_MAINTAINER:-StellaOps signer-agent maintainers <signer-agent@stella-ops.org>}
export TZ=UTC LC_ALL=C GOTOOLCHAIN=local GOFLAGS=
MODULE=github.com/stellaops/signer-agent
SOURCE_REPO=git+https://$MODULE
CHECKSUMS_TYPE=https://$MODULE/offline-kit/checksums/v1
PROVENANCE_TYPE=https://slsa.dev/provenance/v1

say() { printf '==> [%4ss] %s\n' "$SECONDS" "$*"; }
die() {
	printf 'dist: FAIL: %s\n' "$*" >&2
	exit 1
}

for tool in git gcc aarch64-linux-gnu-gcc readelf openssl sha256sum gzip dpkg-query; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (make deps installs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, openssl)"
done
[ -x "$NFPM" ] || die "nfpm not found at $NFPM (make $NFPM)"
for f in /usr/aarch64-linux-gnu/lib/libc.so.6 /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 \
	/lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 /etc/ssl/certs/ca-certificates.crt; do
	[ -e "$f" ] || die "$f is missing (Debian packages libc6, libc6-arm64-cross, ca-certificates)"
done

commit=$(git rev-parse HEAD)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct HEAD)}
VERSION=${VERSION:-$(bash packaging/dist/version.sh)}
kit_name=signer-agent-offline-kit_$VERSION
tree_clean=true
[ -z "$(git status --porcelain --untracked-files=no)" ] || tree_clean=false
say "signer-agent $VERSION (commit $commit, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
$tree_clean || say "WARNING: uncommitted changes are built in; the artifacts are not reproducible from commit $commit"

work=$(mktemp -d /tmp/sa-dist.XXXXXX)
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then
		kill -TERM "$agent_pid" 2>/dev/null || true
		wait "$agent_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$DIST"
rm -f "$DIST"/signer-agent_*.deb "$DIST"/signer-agent_*_oci.tar "$DIST"/signer-agent-offline-kit_*.tar.gz "$DIST"/release.pub

# --- 1. binaries (cgo: PKCS#11) --------------------------------------------------
ldflags="-s -w -buildid= -extldflags=-Wl,-z,now -X $MODULE/agent.Version=$VERSION -X main.version=$VERSION"
goflags=(-trimpath -buildmode=pie)
build_arch() { # arch CC
	say "go build linux/$1 (CC=$2)"
	mkdir -p "$work/bin/linux-$1"
	CGO_ENABLED=1 GOOS=linux GOARCH=$1 CC=$2 \
		"$GO" build "${goflags[@]}" -ldflags "$ldflags" -o "$work/bin/linux-$1/" ./cmd/signer-agent ./cmd/signerctl
}
build_arch amd64 gcc
build_arch arm64 aarch64-linux-gnu-gcc
readelf -h "$work/bin/linux-amd64/signer-agent" | grep -q 'X86-64' || die "amd64 binary is not x86-64"
readelf -h "$work/bin/linux-arm64/signer-agent" | grep -q 'AArch64' || die "arm64 binary is not AArch64"
# The newest glibc symbol version the binaries need: the .deb's libc6 floor.
libc_min() {
	readelf -V --wide "$1/signer-agent" "$1/signerctl" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -n 1
}

# Helpers (built once; go run would link them at every call).
"$GO" build -trimpath -o "$work/tools/" ./packaging/oci ./packaging/kitgen

# --- 2. Debian packages -----------------------------------------------------------
mkdir -p "$work/gen"
{
	printf 'signer-agent (%s) unstable; urgency=medium\n\n' "$VERSION"
	printf '  * Built by make dist from commit %s.\n' "$commit"
	printf '  * See /usr/share/doc/signer-agent/README.md and the git history.\n\n'
	printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$(date -u -d "@$SOURCE_DATE_EPOCH" -R)"
} | gzip -9n >"$work/gen/changelog.gz"
for arch in amd64 arm64; do
	deb=$DIST/signer-agent_${VERSION}_$arch.deb
	say "nfpm: $(basename "$deb")"
	VERSION=$VERSION ARCH=$arch BINDIR=$work/bin/linux-$arch GENDIR=$work/gen \
		LIBC_MIN=$(libc_min "$work/bin/linux-$arch") DEB_MAINTAINER=$DEB_MAINTAINER \
		"$NFPM" package --config packaging/deb/nfpm.yaml --packager deb --target "$deb" >/dev/null
done

# --- 3. OCI image -----------------------------------------------------------------
oci=$DIST/signer-agent_${VERSION}_oci.tar
say "OCI image layout: $(basename "$oci")"
"$work/tools/oci" --version "$VERSION" --epoch "$SOURCE_DATE_EPOCH" --out "$oci" \
	--bin amd64="$work/bin/linux-amd64" --bin arm64="$work/bin/linux-arm64" \
	--lib amd64=/lib/x86_64-linux-gnu/libc.so.6:/lib/x86_64-linux-gnu/libc.so.6 \
	--lib amd64=/lib64/ld-linux-x86-64.so.2:/lib64/ld-linux-x86-64.so.2 \
	--lib arm64=/usr/aarch64-linux-gnu/lib/libc.so.6:/lib/aarch64-linux-gnu/libc.so.6 \
	--lib arm64=/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1:/lib/ld-linux-aarch64.so.1 \
	--ca-bundle /etc/ssl/certs/ca-certificates.crt \
	--label org.opencontainers.image.title=signer-agent \
	--label org.opencontainers.image.revision="$commit" \
	--label org.opencontainers.image.source="https://$MODULE"

# --- 4. offline kit tree --------------------------------------------------------------
say "offline kit: $kit_name"
kit=$work/kit/$kit_name
mkdir -p "$kit"/{bin,systemd,config,docs/runbooks}
cp "$DIST"/signer-agent_"${VERSION}"_amd64.deb "$DIST"/signer-agent_"${VERSION}"_arm64.deb "$kit/"
for arch in amd64 arm64; do
	install -D -m 0755 "$work/bin/linux-$arch/signer-agent" "$kit/bin/linux-$arch/signer-agent"
	install -D -m 0755 "$work/bin/linux-$arch/signerctl" "$kit/bin/linux-$arch/signerctl"
done
install -m 0644 systemd/signer-agent.service systemd/signer-agent.socket systemd/signer-agent-admin.socket \
	systemd/signer-agent.sysusers systemd/signer-agent.tmpfiles "$kit/systemd/"
install -m 0644 packaging/config.example.yaml "$kit/config/config.example.yaml"
(cd packaging/kit && find trust -type f -name '*.md' -exec install -D -m 0644 {} "$kit/{}" \;)
install -m 0644 docs/runbooks/*.md "$kit/docs/runbooks/"
install -m 0644 docs/offline-kit.md docs/install.md "$kit/docs/"
install -m 0644 packaging/kit/README.md "$kit/README.md"
install -m 0755 packaging/kit/install.sh "$kit/install.sh"

# --- 5. provenance predicate ----------------------------------------------------------------
pkgver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo unknown; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
"$work/tools/kitgen" provenance --out "$work/provenance.json" \
	--version "$VERSION" --repo "$SOURCE_REPO" --commit "$commit" --command "make dist" \
	--epoch "$SOURCE_DATE_EPOCH" --builder-id "https://$MODULE/packaging/dist/dist.sh" \
	--builder-version go="$("$GO" env GOVERSION)" --builder-version nfpm="$("$GO" version -m "$NFPM" | awk '$1 == "mod" { print $3 }')" \
	--param goflags="${goflags[*]}" --param ldflags="$ldflags" --param CGO_ENABLED=1 \
	--param CGO_CFLAGS="$("$GO" env CGO_CFLAGS)" --param CC.amd64=gcc --param CC.arm64=aarch64-linux-gnu-gcc \
	--param sourceTreeClean=$tree_clean \
	--dep gcc="pkg:deb/debian/gcc@$(pkgver gcc)?arch=amd64" \
	--dep gcc-aarch64-linux-gnu="pkg:deb/debian/gcc-aarch64-linux-gnu@$(pkgver gcc-aarch64-linux-gnu)?arch=amd64" \
	--dep libc6.amd64="pkg:deb/debian/libc6@$(pkgver libc6)?arch=amd64@sha256:$(sha /lib/x86_64-linux-gnu/libc.so.6)" \
	--dep libc6-arm64-cross="pkg:deb/debian/libc6-arm64-cross@$(pkgver libc6-arm64-cross)?arch=all@sha256:$(sha /usr/aarch64-linux-gnu/lib/libc.so.6)" \
	--dep ca-certificates="pkg:deb/debian/ca-certificates@$(pkgver ca-certificates)?arch=all@sha256:$(sha /etc/ssl/certs/ca-certificates.crt)" \
	--dep go.sum="$SOURCE_REPO@$commit#go.sum@sha256:$(sha go.sum)"
subjects=()
for f in "$DIST"/signer-agent_"${VERSION}"_amd64.deb "$DIST"/signer-agent_"${VERSION}"_arm64.deb "$oci"; do
	subjects+=(--subject "name=$(basename "$f"),sha256=$(sha "$f")")
done
for f in bin/linux-amd64/signer-agent bin/linux-amd64/signerctl bin/linux-arm64/signer-agent bin/linux-arm64/signerctl; do
	subjects+=(--subject "name=$f,sha256=$(sha "$kit/$f")")
done

# --- 6. the release key, and the agent that signs with it ----------------------------
state=$work/agent
mkdir -p "$state/keys"
chmod 0700 "$state" "$state/keys"
if [ -n "${RELEASE_KEY:-}" ]; then
	[ -r "$RELEASE_KEY" ] || die "RELEASE_KEY=$RELEASE_KEY is not readable"
	install -m 0600 "$RELEASE_KEY" "$state/keys/dev.pem"
	say "release key: $RELEASE_KEY"
else
	openssl genpkey -algorithm ed25519 -out "$state/keys/dev.pem" 2>/dev/null
	chmod 0600 "$state/keys/dev.pem"
	cat >&2 <<'WARN'
################################################################################
##  WARNING: RELEASE_KEY is not set. The offline kit is signed with a THROWAWAY ##
##  Ed25519 key generated for this build only (public half: dist/release.pub). ##
##  Such a kit is for local tests and CI; never ship it. Set RELEASE_KEY=path  ##
##  to the release signing key (PEM) for a real release.                       ##
################################################################################
WARN
fi
openssl pkey -in "$state/keys/dev.pem" -pubout -out "$state/keys/dev.pub" 2>/dev/null ||
	die "cannot read the release key (want an unencrypted PEM private key)"
install -m 0644 "$state/keys/dev.pub" "$DIST/release.pub"

agent=$work/bin/linux-amd64/signer-agent
ctl=$work/bin/linux-amd64/signerctl
export SIGNER_AGENT_SOCKET=unix://$state/api.sock
start_agent() {
	"$agent" --dev --state-dir "$state" >>"$state/agent.log" 2>&1 &
	agent_pid=$!
	for _ in $(seq 1 300); do
		"$ctl" health >/dev/null 2>&1 && return 0
		kill -0 "$agent_pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$state/agent.log" >&2
	die "the dev agent did not become healthy"
}
stop_agent() {
	kill -TERM "$agent_pid"
	wait "$agent_pid" || true
	agent_pid=
}
say "starting the just-built signer-agent --dev with the release key"
start_agent # writes the dev layout and keeps keys/dev.pem
stop_agent
# The dev tenant may sign the two predicate types of the kit.
cfg=$state/config.yaml
grep -qx '    predicateTypes:' "$cfg" || die "dev config has no tenant predicateTypes list"
sed -i "/^    predicateTypes:\$/a\\      - $PROVENANCE_TYPE\\n      - $CHECKSUMS_TYPE" "$cfg"
grep -qx "      - $CHECKSUMS_TYPE" "$cfg" || die "could not allow the kit predicate types in $cfg"
start_agent
"$ctl" dev token --state-dir "$state" --out "$state/creds.json"

say "signing the provenance through the agent"
"$ctl" sign --credentials "$state/creds.json" --predicate "$work/provenance.json" --type "$PROVENANCE_TYPE" \
	"${subjects[@]}" --out-bundle "$kit/provenance.sigstore.json" >/dev/null ||
	{ cat "$state/agent.log" >&2; die "the agent did not sign the provenance"; }
"$work/tools/kitgen" sums "$kit"
"$work/tools/kitgen" checksums --out "$work/checksums.json" --kit "$kit_name" --version "$VERSION" --commit "$commit"
say "signing SHA256SUMS through the agent"
"$ctl" sign --credentials "$state/creds.json" --predicate "$work/checksums.json" --type "$CHECKSUMS_TYPE" \
	--artifact "$kit/SHA256SUMS" --out-bundle "$kit/SHA256SUMS.sigstore.json" >/dev/null ||
	{ cat "$state/agent.log" >&2; die "the agent did not sign SHA256SUMS"; }
stop_agent

# --- 7. the kit tarball, checked as an operator would -------------------------------
"$work/tools/kitgen" tar --top "$kit_name" --epoch "$SOURCE_DATE_EPOCH" "$kit" "$DIST/$kit_name.tar.gz"
"$ctl" kit verify "$DIST/$kit_name.tar.gz" --key "$DIST/release.pub" >/dev/null ||
	die "the kit just built does not verify"

say "dist/ (sha256):"
(cd "$DIST" && sha256sum signer-agent_"${VERSION}"_amd64.deb signer-agent_"${VERSION}"_arm64.deb \
	signer-agent_"${VERSION}"_oci.tar "$kit_name.tar.gz" release.pub | sed 's/^/    /')
