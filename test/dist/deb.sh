#!/usr/bin/env bash
# The .deb lifecycle on this machine (SPEC §13, TESTING.md "Debian
# package"), run by `make dist-test` as root after `make dist`:
#
#   lintian: no errors (warnings printed; see packaging/deb/README.md)
#   install: files, owners and modes; the user and groups; the conffile;
#            both sockets enabled; `systemd-analyze verify` of the installed
#            units; `signer-agent --check-config` of the installed config
#   run:     the installed binary, started by systemd-socket-activate on the
#            installed socket paths as the signer-agent user, signs a
#            request (configured from a dev layout) that cosign verifies
#   upgrade: to a newer package version keeps the edited config, the state
#            and the audit log
#   remove:  binaries and units go, config and audit log stay
#   purge:   config and state go, the audit log stays and purge says so
#
# It refuses to run when signer-agent is already installed or its paths
# exist, and leaves the machine as it found it (package purged, audit log,
# users and groups it created removed).
#
# Usage: test/dist/deb.sh DIST_DIR
set -euo pipefail
[ $# -eq 1 ] || {
	echo "usage: $0 DIST_DIR" >&2
	exit 2
}
dist=$(cd "$1" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${BIN:-$repo/bin}
COSIGN=${SIGNER_AGENT_COSIGN:-$BIN/cosign}
NFPM=${NFPM:-$BIN/nfpm}

fail() {
	printf 'deb.sh: FAIL: %s\n' "$*" >&2
	exit 1
}
note() { printf 'deb.sh: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i)"
for tool in dpkg dpkg-deb lintian systemd-analyze systemd-socket-activate setpriv openssl getent; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (make deps installs lintian, systemd, util-linux)"
done
[ -x "$COSIGN" ] || fail "cosign not found at $COSIGN (make tools)"
[ -x "$NFPM" ] || fail "nfpm not found at $NFPM (make bin/nfpm)"
debs=("$dist"/signer-agent_*_amd64.deb)
[ -f "${debs[0]}" ] || fail "no signer-agent_*_amd64.deb in $dist (make dist)"
deb=${debs[0]}
deb_arm64=${deb%_amd64.deb}_arm64.deb
version=$(dpkg-deb -f "$deb" Version)
[ -f "$deb_arm64" ] || fail "missing $deb_arm64"

if dpkg-query -W -f '${Status}' signer-agent 2>/dev/null | grep -q installed; then
	fail "signer-agent is installed on this machine; this test would replace it"
fi
for p in /etc/signer-agent /var/lib/signer-agent /usr/bin/signer-agent; do
	[ ! -e "$p" ] || fail "$p exists; this test would overwrite it"
done
had_user=false had_clients=false had_agent_group=false had_tss=false
getent passwd signer-agent >/dev/null && had_user=true
getent group signer-clients >/dev/null && had_clients=true
getent group signer-agent >/dev/null && had_agent_group=true
getent group tss >/dev/null && had_tss=true

work=$(mktemp -d /tmp/sa-deb.XXXXXX)
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then
		kill -TERM "$agent_pid" 2>/dev/null || true
		wait "$agent_pid" 2>/dev/null || true
	fi
	dpkg -P signer-agent >/dev/null 2>&1 || true
	rm -rf /etc/signer-agent /var/lib/signer-agent /run/signer-agent
	$had_user || userdel signer-agent 2>/dev/null || true
	$had_agent_group || groupdel signer-agent 2>/dev/null || true
	$had_clients || groupdel signer-clients 2>/dev/null || true
	$had_tss || groupdel tss 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# --- lintian -------------------------------------------------------------------
note "lintian $(basename "$deb") $(basename "$deb_arm64")"
set +e
lout=$(lintian --tag-display-limit 0 --fail-on error "$deb" "$deb_arm64" 2>&1)
rc=$?
set -e
[ -z "$lout" ] || printf '%s\n' "$lout" | sed 's/^/  lintian: /'
grep -q '^E:' <<<"$lout" && fail "lintian reports errors"
[ $rc -eq 0 ] || fail "lintian exited with status $rc"

# --- install -------------------------------------------------------------------
note "dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$work/install.log" 2>&1 || {
	cat "$work/install.log" >&2
	fail "dpkg -i failed"
}
[ "$(dpkg-query -W -f '${Version}' signer-agent)" = "$version" ] || fail "installed version is not $version"

expect() { # path "mode user group"
	local got
	got=$(stat -c '%a %U %G' "$1" 2>/dev/null) || fail "$1 is missing"
	[ "$got" = "$2" ] || fail "$1 is '$got', want '$2'"
}
expect /usr/bin/signer-agent "755 root root"
expect /usr/bin/signerctl "755 root root"
expect /usr/lib/systemd/system/signer-agent.service "644 root root"
expect /usr/lib/systemd/system/signer-agent.socket "644 root root"
expect /usr/lib/systemd/system/signer-agent-admin.socket "644 root root"
expect /usr/lib/sysusers.d/signer-agent.conf "644 root root"
expect /usr/lib/tmpfiles.d/signer-agent.conf "644 root root"
expect /etc/signer-agent/config.yaml "640 root signer-agent"
expect /etc/signer-agent/keys "750 root signer-agent"
expect /etc/signer-agent/trust "755 root root"
expect /etc/signer-agent/trust/authority "755 root root"
expect /etc/signer-agent/trust/licensing "755 root root"
expect /etc/signer-agent/trust/release "755 root root"
expect /var/lib/signer-agent "700 signer-agent signer-agent"
expect /run/signer-agent "750 signer-agent signer-clients"
expect /usr/share/doc/signer-agent/copyright "644 root root"
expect /usr/share/doc/signer-agent/changelog.gz "644 root root"
expect /usr/share/doc/signer-agent/trust/release/README.md "644 root root"
expect /usr/share/bash-completion/completions/signerctl "644 root root"
ls /usr/share/doc/signer-agent/runbooks/*.md >/dev/null || fail "runbooks are not installed"
cmp -s /etc/signer-agent/config.yaml "$repo/packaging/config.example.yaml" || fail "config.yaml is not the reference config"
dpkg-query -W -f '${Conffiles}\n' signer-agent | grep -q '^ /etc/signer-agent/config.yaml ' ||
	fail "/etc/signer-agent/config.yaml is not a conffile"
dpkg-deb -f "$deb" Depends | grep -Eq '^libc6 \(>= 2\.[0-9]+\)$' || fail "Depends is not just libc6: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb_arm64" Architecture | grep -qx arm64 || fail "the arm64 package is not Architecture: arm64"
getent passwd signer-agent | grep -q ':/var/lib/signer-agent:/usr/sbin/nologin$' || fail "user signer-agent is missing or has a shell"
getent group signer-clients >/dev/null || fail "group signer-clients is missing"
id -nG signer-agent | grep -qw tss || fail "signer-agent is not in group tss"
for u in signer-agent.socket signer-agent-admin.socket; do
	[ -L "/etc/systemd/system/sockets.target.wants/$u" ] || fail "$u is not enabled"
done
note "installed: files, owners, modes, user, conffile and enabled sockets are as expected"

note "systemd-analyze verify (installed units)"
set +e
vout=$(systemd-analyze verify /usr/lib/systemd/system/signer-agent.service \
	/usr/lib/systemd/system/signer-agent.socket /usr/lib/systemd/system/signer-agent-admin.socket 2>&1)
rc=$?
set -e
[ -z "$vout" ] || printf '%s\n' "$vout" | sed 's/^/  verify: /'
[ $rc -eq 0 ] || fail "systemd-analyze verify exited with $rc"
! grep -q 'signer-agent' <<<"$vout" || fail "systemd-analyze verify reported problems in the installed units"

/usr/bin/signer-agent --check-config /etc/signer-agent/config.yaml >/dev/null ||
	fail "signer-agent --check-config rejects the installed config"
[ "$(/usr/bin/signer-agent --version)" = "signer-agent ${version%+up*}" ] ||
	note "binary version: $(/usr/bin/signer-agent --version)"

# --- configure from a dev layout, then run under socket activation ----------------
note "configuring /etc/signer-agent from a dev layout (trust roots, key, config)"
dev=$work/dev
/usr/bin/signer-agent --dev --state-dir "$dev" >"$work/dev-agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 1 300); do
	SIGNER_AGENT_SOCKET=unix://$dev/api.sock /usr/bin/signerctl health >/dev/null 2>&1 && break
	sleep 0.1
done
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=
[ -f "$dev/config.yaml" ] && [ -f "$dev/authority/jwks.json" ] || fail "the dev layout was not written"
install -m 0644 "$dev/authority/jwks.json" /etc/signer-agent/trust/authority/jwks.json
install -m 0644 "$dev/licensing/public.pem" /etc/signer-agent/trust/licensing/public.pem
install -m 0644 "$dev/release/allowlist.yaml" /etc/signer-agent/trust/release/allowlist.yaml
install -m 0640 -o root -g signer-agent "$dev/keys/dev.pem" /etc/signer-agent/keys/dev.pem
install -m 0644 "$dev/keys/dev.pub" /etc/signer-agent/keys/dev.pub
sed -e "s#^stateDir: .*#stateDir: /var/lib/signer-agent#" \
	-e "s#$dev/api.sock#/run/signer-agent/api.sock#" -e "s#$dev/admin.sock#/run/signer-agent/admin.sock#" \
	-e "s#$dev/authority/jwks.json#/etc/signer-agent/trust/authority/jwks.json#" \
	-e "s#$dev/licensing/public.pem#/etc/signer-agent/trust/licensing/public.pem#" \
	-e "s#$dev/release/allowlist.yaml#/etc/signer-agent/trust/release/allowlist.yaml#" \
	-e "s#file:$dev/keys/dev.pem#file:/etc/signer-agent/keys/dev.pem#" \
	"$dev/config.yaml" >"$work/config.yaml"
! grep -q "$dev" "$work/config.yaml" || fail "the dev config names paths this test does not map: $(grep "$dev" "$work/config.yaml")"
printf '# edited by test/dist/deb.sh\n' >>"$work/config.yaml"
cat "$work/config.yaml" >/etc/signer-agent/config.yaml # keeps owner and mode
expect /etc/signer-agent/config.yaml "640 root signer-agent"
/usr/bin/signer-agent --check-config /etc/signer-agent/config.yaml >/dev/null || fail "--check-config rejects the edited config"

note "systemd-socket-activate on /run/signer-agent/{api,admin}.sock, agent as user signer-agent"
systemd-socket-activate -l /run/signer-agent/api.sock -l /run/signer-agent/admin.sock --fdname=api:admin \
	setpriv --reuid=signer-agent --regid=signer-agent --init-groups \
	/usr/bin/signer-agent --config /etc/signer-agent/config.yaml >"$work/agent.log" 2>&1 &
agent_pid=$!
export SIGNER_AGENT_SOCKET=unix:///run/signer-agent/api.sock
for _ in $(seq 1 200); do [ -S /run/signer-agent/api.sock ] && break; sleep 0.05; done
ok=false
for _ in $(seq 1 300); do
	if /usr/bin/signerctl health >/dev/null 2>&1; then ok=true; break; fi
	kill -0 "$agent_pid" 2>/dev/null || break
	sleep 0.1
done
$ok || {
	cat "$work/agent.log" >&2
	fail "the socket-activated agent did not become healthy"
}
grep -q '"socketActivated": true\|socketActivated.*true' "$work/agent.log" || {
	cat "$work/agent.log" >&2
	fail "the agent did not report socket activation"
}
[ "$(ps -o uid= -p "$agent_pid" | tr -d ' ')" = "$(id -u signer-agent)" ] || fail "the agent does not run as signer-agent"
/usr/bin/signerctl dev token --state-dir "$dev" --out "$work/creds.json"
printf 'an artifact signed by the installed package\n' >"$work/artifact.txt"
/usr/bin/signerctl sign --credentials "$work/creds.json" --predicate "$repo/test/fixtures/sbom-predicate.json" \
	--type stella.ops/sbom@v1 --artifact "$work/artifact.txt" --out-bundle "$work/bundle.json" >/dev/null ||
	{ cat "$work/agent.log" >&2; fail "signing through the installed agent failed"; }
"$COSIGN" verify-blob-attestation --key /etc/signer-agent/keys/dev.pub --bundle "$work/bundle.json" \
	--insecure-ignore-tlog --type stella.ops/sbom@v1 "$work/artifact.txt" >/dev/null 2>&1 ||
	fail "cosign does not verify the bundle signed by the installed agent"
note "signed through the installed, socket-activated agent; cosign verifies"
kill -TERM "$agent_pid"
wait "$agent_pid" || true
agent_pid=
ls /var/lib/signer-agent/audit/* >/dev/null 2>&1 || fail "no audit log in /var/lib/signer-agent/audit"
cp -a /var/lib/signer-agent/audit "$work/audit-before"
touch /var/lib/signer-agent/state-marker

cp /usr/bin/signerctl "$work/signerctl" # still there after purge
audit_kept() { # every audit file from before is unchanged, and the chain verifies
	local f n
	for f in "$work"/audit-before/*; do
		[ -f "$f" ] || continue
		n=$(stat -c %s "$f")
		[ -f "/var/lib/signer-agent/audit/$(basename "$f")" ] || fail "$1: audit file $(basename "$f") is gone"
		cmp -s -n "$n" "$f" "/var/lib/signer-agent/audit/$(basename "$f")" || fail "$1: audit file $(basename "$f") changed"
	done
	"$work/signerctl" audit verify --dir /var/lib/signer-agent/audit >/dev/null ||
		fail "$1: signerctl audit verify fails on the kept audit log"
}

# --- upgrade ----------------------------------------------------------------------------
new=$version+up1
note "upgrade to $new (same binaries, newer package)"
mkdir -p "$work/up/bin" "$work/up/gen"
dpkg-deb -x "$deb" "$work/up/root"
cp "$work/up/root/usr/bin/signer-agent" "$work/up/root/usr/bin/signerctl" "$work/up/bin/"
cp "$work/up/root/usr/share/doc/signer-agent/changelog.gz" "$work/up/gen/"
libc_min=$(dpkg-deb -f "$deb" Depends | sed -n 's/^libc6 (>= \(.*\))$/\1/p')
(cd "$repo" && VERSION=$new ARCH=amd64 BINDIR=$work/up/bin GENDIR=$work/up/gen LIBC_MIN=$libc_min \
	DEB_MAINTAINER="dist test <dist-test@stella-ops.org>" \
	"$NFPM" package --config packaging/deb/nfpm.yaml --packager deb --target "$work/up/new.deb" >/dev/null)
dpkg -i "$work/up/new.deb" >"$work/upgrade.log" 2>&1 </dev/null || {
	cat "$work/upgrade.log" >&2
	fail "dpkg -i (upgrade) failed"
}
[ "$(dpkg-query -W -f '${Version}' signer-agent)" = "$new" ] || fail "upgrade did not install $new"
cmp -s /etc/signer-agent/config.yaml "$work/config.yaml" || fail "upgrade changed the edited config"
expect /etc/signer-agent/config.yaml "640 root signer-agent"
[ -f /var/lib/signer-agent/state-marker ] || fail "upgrade removed state from /var/lib/signer-agent"
[ -f /etc/signer-agent/keys/dev.pem ] || fail "upgrade removed a key"
audit_kept upgrade
/usr/bin/signer-agent --check-config /etc/signer-agent/config.yaml >/dev/null || fail "--check-config after the upgrade"
note "upgrade kept the edited config, the state and the audit log"

# --- remove, then purge ------------------------------------------------------------------
note "dpkg -r signer-agent"
dpkg -r signer-agent >"$work/remove.log" 2>&1 || {
	cat "$work/remove.log" >&2
	fail "dpkg -r failed"
}
for gone in /usr/bin/signer-agent /usr/bin/signerctl /usr/lib/systemd/system/signer-agent.service; do
	[ ! -e "$gone" ] || fail "remove left $gone"
done
[ -f /etc/signer-agent/config.yaml ] || fail "remove deleted the config (only purge may)"
audit_kept remove

note "dpkg -P signer-agent"
dpkg -P signer-agent >"$work/purge.log" 2>&1 || {
	cat "$work/purge.log" >&2
	fail "dpkg -P failed"
}
sed 's/^/  purge: /' "$work/purge.log"
grep -q 'audit log in /var/lib/signer-agent/audit was kept' "$work/purge.log" || fail "purge does not say that it kept the audit log"
[ ! -e /etc/signer-agent/config.yaml ] || fail "purge left the config"
[ ! -e /var/lib/signer-agent/state-marker ] || fail "purge left runtime state in /var/lib/signer-agent"
[ "$(ls /var/lib/signer-agent)" = audit ] || fail "purge left more than the audit log: $(ls /var/lib/signer-agent)"
audit_kept purge
[ -f /etc/signer-agent/keys/dev.pem ] || fail "purge deleted a key the administrator added"
for u in signer-agent.socket signer-agent-admin.socket; do
	[ ! -e "/etc/systemd/system/sockets.target.wants/$u" ] || fail "purge left the $u enable link"
done
note "OK: install, run, upgrade, remove and purge behave as specified; the audit log survived the purge"
