#!/usr/bin/env bash
# Checks the systemd packaging in systemd/ (SPEC §13, TESTING.md "systemd units"):
#
#   1. `systemd-analyze verify` on the service and both socket units, against a
#      temporary root that holds BINARY at the ExecStart path, so the real unit
#      files are checked with the binary present. Any warning that names one of
#      our units fails the check.
#   2. `systemd-analyze security --offline=true` on the service: the overall
#      exposure must be at most MAX_EXPOSURE (default 2.0).
#   3. The sysusers.d and tmpfiles.d entries parse, and (as root) create the
#      users, groups and directories with the intended owners and modes, all
#      inside the temporary root.
#
# Usage: test/units/check.sh BINARY
#
# Needs systemd-analyze, systemd-sysusers and systemd-tmpfiles (Debian package
# systemd, v252 or newer). Does not need systemd as PID 1 and never touches the
# real /etc, /run or /var: everything happens below a mktemp -d directory.
set -euo pipefail

MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}

fail() {
	printf 'check.sh: FAIL: %s\n' "$*" >&2
	exit 1
}
note() {
	printf 'check.sh: %s\n' "$*"
}

[ $# -eq 1 ] || {
	echo "usage: $0 BINARY" >&2
	exit 2
}
binary=$1
[ -f "$binary" ] && [ -x "$binary" ] || fail "BINARY '$binary' is not an executable file"

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	command -v "$tool" >/dev/null 2>&1 ||
		fail "$tool not found; install it with: apt-get install systemd"
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
units_src=$repo/systemd
service=signer-agent.service
units=(signer-agent.service signer-agent.socket signer-agent-admin.socket)
for f in "${units[@]}" signer-agent.sysusers signer-agent.tmpfiles; do
	[ -f "$units_src/$f" ] || fail "missing $units_src/$f"
done

# The host's own unit directory: the staged root needs the targets our units
# depend on (sysinit.target, sockets.target, network-online.target, ...).
host_units=
for d in /usr/lib/systemd/system /lib/systemd/system; do
	if [ -f "$d/sysinit.target" ]; then
		host_units=$d
		break
	fi
done
[ -n "$host_units" ] || fail "no systemd unit directory with sysinit.target found on this host"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/signer-agent-units.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root

# --- stage the root ------------------------------------------------------------
# Debian 12 layout: merged /usr, so /bin/kill (ExecReload) is /usr/bin/kill.
mkdir -p "$root/usr/bin" "$root/usr/sbin" "$root/usr/lib/systemd" \
	"$root/etc/systemd/system" "$root/run" "$root/var/lib"
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
cp -a "$host_units" "$root/usr/lib/systemd/system"
install -m 0755 "$binary" "$root/usr/bin/signer-agent"
if [ -x /usr/bin/kill ]; then
	install -m 0755 /usr/bin/kill "$root/usr/bin/kill"
elif [ -x /bin/kill ]; then
	install -m 0755 /bin/kill "$root/usr/bin/kill"
else
	# Only the path matters to verify; procps ships /bin/kill on real hosts.
	printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/kill"
	chmod 0755 "$root/usr/bin/kill"
fi
for u in "${units[@]}"; do
	install -m 0644 "$units_src/$u" "$root/etc/systemd/system/$u"
done

# --- 1. systemd-analyze verify ---------------------------------------------------
# Prints the lines of $1 that name one of our units or files.
ours() {
	grep -E 'signer-agent' <<<"$1" || true
}

run_verify() {
	# --root= makes verify resolve units, dependencies and ExecStart=/ExecReload=
	# paths inside the staged root (supported by v252).
	systemd-analyze verify --root="$root" "${units[@]}" 2>&1
}

note "systemd-analyze verify --root=<tmp> ${units[*]}"
set +e
out=$(run_verify)
rc=$?
set -e
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/  verify: /'
if [ $rc -ne 0 ]; then
	fail "systemd-analyze verify exited with status $rc"
fi
if [ -n "$(ours "$out")" ]; then
	fail "systemd-analyze verify reported problems in our units (see above)"
fi
note "verify: clean"

# Control: without the binary at the ExecStart path verify must object. This
# proves the check above really looked at our files inside the staged root.
mv "$root/usr/bin/signer-agent" "$tmp/signer-agent.staged"
set +e
out=$(run_verify)
set -e
mv "$tmp/signer-agent.staged" "$root/usr/bin/signer-agent"
grep -q '/usr/bin/signer-agent' <<<"$out" ||
	fail "control run: verify did not notice a missing /usr/bin/signer-agent; the staged root is not being used"

# The contract of SPEC §3/§13 that verify cannot know about.
require_line() { # unit line
	grep -qxF -- "$2" "$units_src/$1" || fail "$1 must contain the line '$2' (SPEC §3/§13)"
}
require_line signer-agent.socket 'ListenStream=/run/signer-agent/api.sock'
require_line signer-agent.socket 'FileDescriptorName=api'
require_line signer-agent.socket 'SocketMode=0660'
require_line signer-agent.socket 'SocketGroup=signer-clients'
require_line signer-agent.socket 'Service=signer-agent.service'
require_line signer-agent-admin.socket 'ListenStream=/run/signer-agent/admin.sock'
require_line signer-agent-admin.socket 'FileDescriptorName=admin'
require_line signer-agent-admin.socket 'SocketMode=0600'
require_line signer-agent-admin.socket 'Service=signer-agent.service'
require_line signer-agent.service 'Type=notify'
require_line signer-agent.service 'ExecStart=/usr/bin/signer-agent --config /etc/signer-agent/config.yaml'
require_line signer-agent.service 'ExecReload=/bin/kill -HUP $MAINPID'
require_line signer-agent.service 'User=signer-agent'
grep -qE '^WatchdogSec=[1-9]' "$units_src/signer-agent.service" ||
	fail "signer-agent.service must set a WatchdogSec= (SPEC §13)"
grep -qE '^LimitNOFILE=[1-9][0-9]*$' "$units_src/signer-agent.service" ||
	fail "signer-agent.service must set LimitNOFILE= to one number (soft = hard; SPEC §3, docs/runbooks/limits.md)"
if grep -qE '^RuntimeDirectory=' "$units_src/signer-agent.service"; then
	fail "signer-agent.service must not use RuntimeDirectory=: it would delete the socket units' sockets in /run/signer-agent on stop"
fi

# --- 2. systemd-analyze security --------------------------------------------------
# --offline=true reads the unit file instead of asking PID 1; --threshold is on
# the 0..100 scale (20 = 2.0), the printed figure is divided by 10.
threshold=$(awk -v m="$MAX_EXPOSURE" 'BEGIN { printf "%d", m * 10 + 0.5 }')
note "systemd-analyze security --offline=true --root=<tmp> --threshold=$threshold $service"
set +e
out=$(systemd-analyze security --offline=true --root="$root" --threshold="$threshold" "$service" 2>&1)
rc=$?
set -e
exposure=$(sed -n "s/.*Overall exposure level for $service: \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p" <<<"$out" | tail -n 1)
if [ -z "$exposure" ]; then
	printf '%s\n' "$out" >&2
	fail "could not find the overall exposure level in the output of systemd-analyze security"
fi
# Show what still counts against the score.
grep -E '^✗' <<<"$out" | sed 's/^/  security: /' || true
note "exposure for $service: $exposure (limit $MAX_EXPOSURE)"
if awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e > m) }'; then
	fail "exposure $exposure is above $MAX_EXPOSURE"
fi
if [ $rc -ne 0 ]; then
	printf '%s\n' "$out" >&2
	fail "systemd-analyze security exited with status $rc"
fi
if [ -n "$(grep -E 'signer-agent' <<<"$out" | grep -vE 'Overall exposure level' || true)" ]; then
	grep -E 'signer-agent' <<<"$out" | grep -vE 'Overall exposure level' >&2 || true
	fail "systemd-analyze security reported problems in our units (see above)"
fi

# --- 3. sysusers.d and tmpfiles.d entries ------------------------------------------
note "systemd-sysusers --root=<tmp> signer-agent.sysusers"
out=$(systemd-sysusers --root="$root" "$units_src/signer-agent.sysusers" 2>&1) || {
	printf '%s\n' "$out" >&2
	fail "systemd-sysusers rejected signer-agent.sysusers"
}
for n in signer-agent signer-clients tss; do
	grep -q "^$n:" "$root/etc/group" || fail "sysusers did not create group $n"
done
grep -q '^signer-agent:' "$root/etc/passwd" || fail "sysusers did not create user signer-agent"
grep -Eq '^tss:[^:]*:[^:]*:(.*,)?signer-agent(,.*)?$' "$root/etc/group" ||
	fail "sysusers did not add signer-agent to group tss"

# --clean parses every line and resolves users and groups (against the staged
# /etc/passwd) without creating anything; it works without root.
note "systemd-tmpfiles --root=<tmp> --clean signer-agent.tmpfiles"
systemd-tmpfiles --root="$root" --clean "$units_src/signer-agent.tmpfiles" ||
	fail "systemd-tmpfiles rejected signer-agent.tmpfiles"
if [ "$(id -u)" -eq 0 ]; then
	note "systemd-tmpfiles --root=<tmp> --create signer-agent.tmpfiles"
	systemd-tmpfiles --root="$root" --create "$units_src/signer-agent.tmpfiles" ||
		fail "systemd-tmpfiles --create failed"
	uid=$(awk -F: '$1 == "signer-agent" { print $3 }' "$root/etc/passwd")
	agent_gid=$(awk -F: '$1 == "signer-agent" { print $3 }' "$root/etc/group")
	clients_gid=$(awk -F: '$1 == "signer-clients" { print $3 }' "$root/etc/group")
	expect_dir() { # path mode uid gid
		got=$(stat -c '%a %u %g' "$root$1") || fail "tmpfiles did not create $1"
		[ "$got" = "$2 $3 $4" ] || fail "$1 is '$got' (mode uid gid), want '$2 $3 $4'"
	}
	expect_dir /run/signer-agent 750 "$uid" "$clients_gid"
	expect_dir /var/lib/signer-agent 700 "$uid" "$agent_gid"
else
	note "not root: tmpfiles entries parsed and resolved, but owners and modes were not applied (run as root to check them)"
fi

note "OK: units verify clean, exposure $exposure <= $MAX_EXPOSURE"
