#!/bin/sh
# Installs signer-agent from an unpacked offline kit on a host without dpkg
# (SPEC §13). Offline: it reads only the kit. Idempotent: running it again
# gives the same result, and never overwrites /etc/signer-agent/config.yaml
# or anything under /var/lib/signer-agent.
#
#   ./install.sh [--root DIR] [--arch amd64|arm64] [--key release.pub]
#   ./install.sh --uninstall [--purge] [--root DIR]
#
# Layout (a local install, beside the distribution's own packages):
#   /usr/local/bin/signer-agent, signerctl
#   /usr/local/lib/systemd/system/signer-agent{.service,.socket,-admin.socket}
#   /usr/local/lib/sysusers.d/signer-agent.conf, /usr/local/lib/tmpfiles.d/signer-agent.conf
#   /etc/signer-agent/config.yaml (from config/config.example.yaml, only if absent)
#   /etc/signer-agent/trust/{authority,licensing,release}/, /etc/signer-agent/keys/
#   /usr/local/share/doc/signer-agent/ (runbooks, trust-root READMEs, example config)
#   /usr/local/share/signer-agent/installed-files (what --uninstall removes)
#
# --key verifies the kit first (signerctl kit verify); without it, verify
# the kit yourself before installing (docs/offline-kit.md).
# --root DIR installs below DIR (tests, image builds): users, directories
# and unit links are made inside DIR and nothing is started.
# --uninstall stops and removes what was installed and keeps the config,
# trust roots, keys, state and audit log; --purge also removes the config
# and the state, but KEEPS THE AUDIT LOG (/var/lib/signer-agent/audit).
set -eu

kit=$(cd "$(dirname "$0")" && pwd)
root=/
arch=
key=
mode=install
purge=false
while [ $# -gt 0 ]; do
	case "$1" in
	--root) root=${2:?--root needs a directory}; shift 2 ;;
	--arch) arch=${2:?--arch needs amd64 or arm64}; shift 2 ;;
	--key) key=${2:?--key needs a file}; shift 2 ;;
	--uninstall) mode=uninstall; shift ;;
	--purge) purge=true; shift ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
$purge && [ "$mode" != uninstall ] && { echo "install.sh: --purge goes with --uninstall" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
root=$(cd "$root" && pwd)
R=${root%/}   # prefix for paths; empty for /
live=false    # talk to a running systemd?
[ "$root" = / ] && [ -d /run/systemd/system ] && live=true
manifest=$R/usr/local/share/signer-agent/installed-files
say() { printf 'install.sh: %s\n' "$*"; }

if [ "$mode" = uninstall ]; then
	if $live; then
		systemctl stop signer-agent.service signer-agent.socket signer-agent-admin.socket 2>/dev/null || true
	fi
	systemctl --root="$root" disable signer-agent.socket signer-agent-admin.socket >/dev/null 2>&1 || true
	if [ -f "$manifest" ]; then
		while IFS= read -r f; do
			rm -f "$R$f"
		done <"$manifest"
		rm -f "$manifest"
		rmdir "$R/usr/local/share/signer-agent" "$R/usr/local/share/doc/signer-agent/runbooks" \
			"$R/usr/local/share/doc/signer-agent/trust/authority" "$R/usr/local/share/doc/signer-agent/trust/licensing" \
			"$R/usr/local/share/doc/signer-agent/trust/release" "$R/usr/local/share/doc/signer-agent/trust" \
			"$R/usr/local/share/doc/signer-agent" 2>/dev/null || true
	fi
	$live && systemctl daemon-reload || true
	if $purge; then
		rm -f "$R/etc/signer-agent/config.yaml"
		rm -rf "$R/run/signer-agent"
		if [ -d "$R/var/lib/signer-agent" ]; then
			find "$R/var/lib/signer-agent" -mindepth 1 -maxdepth 1 ! -name audit -exec rm -rf {} +
		fi
		for d in trust/authority trust/licensing trust/release trust keys ""; do
			rmdir "$R/etc/signer-agent/$d" 2>/dev/null || true
		done
		[ -d "$R/var/lib/signer-agent/audit" ] &&
			say "the audit log in $R/var/lib/signer-agent/audit was kept: evidence is never deleted by the installer"
		[ -d "$R/etc/signer-agent" ] && say "files you added under $R/etc/signer-agent (keys, trust roots) were kept"
	else
		say "kept: $R/etc/signer-agent (config, trust roots, keys) and $R/var/lib/signer-agent (state, audit log)"
	fi
	say "signer-agent uninstalled"
	exit 0
fi

# --- install -----------------------------------------------------------------------
if [ -z "$arch" ]; then
	case "$(uname -m)" in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	*) echo "install.sh: unsupported machine $(uname -m); pass --arch" >&2; exit 1 ;;
	esac
fi
bindir=$kit/bin/linux-$arch
[ -x "$bindir/signer-agent" ] && [ -x "$bindir/signerctl" ] || { echo "install.sh: no $arch binaries in $bindir" >&2; exit 1; }
if [ -n "$key" ]; then
	# The kit's own signerctl checks the kit; it runs only where the
	# machine matches, which is the machine being installed.
	"$bindir/signerctl" kit verify "$kit" --key "$key"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
installed=""
put() { # MODE SRC DST
	install -D -m "$1" "$2" "$R$3"
	installed="$installed
$3"
}

# Users and groups first, so that files can be given to them.
install -d -m 0755 "$R/etc"
put 0644 "$kit/systemd/signer-agent.sysusers" /usr/local/lib/sysusers.d/signer-agent.conf
put 0644 "$kit/systemd/signer-agent.tmpfiles" /usr/local/lib/tmpfiles.d/signer-agent.conf
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers --root="$root" "$R/usr/local/lib/sysusers.d/signer-agent.conf"
else
	for g in signer-agent signer-clients tss; do
		getent group "$g" >/dev/null 2>&1 || groupadd --root "$root" --system "$g"
	done
	getent passwd signer-agent >/dev/null 2>&1 ||
		useradd --root "$root" --system --gid signer-agent --groups tss --home-dir /var/lib/signer-agent \
			--no-create-home --shell /usr/sbin/nologin --comment "signer-agent signing daemon" signer-agent
fi

put 0755 "$bindir/signer-agent" /usr/local/bin/signer-agent
put 0755 "$bindir/signerctl" /usr/local/bin/signerctl
for u in signer-agent.service signer-agent.socket signer-agent-admin.socket; do
	# The units name /usr/bin/signer-agent (the .deb's path).
	sed 's#/usr/bin/signer-agent#/usr/local/bin/signer-agent#g' "$kit/systemd/$u" >"$tmp/$u"
	put 0644 "$tmp/$u" "/usr/local/lib/systemd/system/$u"
done
doc=/usr/local/share/doc/signer-agent
put 0644 "$kit/config/config.example.yaml" "$doc/config.example.yaml"
for f in "$kit"/docs/runbooks/*.md; do put 0644 "$f" "$doc/runbooks/$(basename "$f")"; done
for f in README.md authority/README.md licensing/README.md release/README.md; do
	put 0644 "$kit/trust/$f" "$doc/trust/$f"
done

# Configuration and trust roots: created once, never overwritten.
install -d -m 0755 "$R/etc/signer-agent" "$R/etc/signer-agent/trust" \
	"$R/etc/signer-agent/trust/authority" "$R/etc/signer-agent/trust/licensing" "$R/etc/signer-agent/trust/release"
# Numeric ids from the target's own /etc/group (with --root, the host's
# may differ).
gid=$(awk -F: '$1 == "signer-agent" { print $3 }' "$R/etc/group")
[ -n "$gid" ] || { echo "install.sh: group signer-agent was not created in $R/etc/group" >&2; exit 1; }
install -d -m 0750 -o 0 -g "$gid" "$R/etc/signer-agent/keys"
if [ ! -e "$R/etc/signer-agent/config.yaml" ]; then
	install -m 0640 -o 0 -g "$gid" "$kit/config/config.example.yaml" "$R/etc/signer-agent/config.yaml"
	say "wrote $R/etc/signer-agent/config.yaml from the example: edit it, then add the trust roots"
else
	say "kept the existing $R/etc/signer-agent/config.yaml"
fi

# Runtime and state directories.
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --root="$root" --create "$R/usr/local/lib/tmpfiles.d/signer-agent.conf"
fi

# What --uninstall removes (sorted, one path per line).
printf '%s\n' "$installed" | sed '/^$/d' | sort -u >"$tmp/manifest"
install -D -m 0644 "$tmp/manifest" "$manifest"

# Enable both sockets (links only; works on an image root too).
if command -v systemctl >/dev/null 2>&1; then
	systemctl --root="$root" enable signer-agent.socket signer-agent-admin.socket >/dev/null 2>&1 ||
		say "could not enable the sockets; run: systemctl enable --now signer-agent.socket signer-agent-admin.socket"
fi
if $live; then
	systemctl daemon-reload
	systemctl try-restart signer-agent.service
	systemctl start signer-agent.socket signer-agent-admin.socket
fi
"$R/usr/local/bin/signerctl" version >/dev/null 2>&1 || [ "$root" != / ] ||
	say "warning: the installed signerctl does not run on this machine (wrong --arch?)"
say "signer-agent installed ($arch) below $root"
