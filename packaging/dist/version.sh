#!/usr/bin/env bash
# Prints the release version from git, safe as a Debian version (native
# package: no '-'), an OCI tag component and a file name:
#
#   tag v1.2.3 on HEAD                 1.2.3
#   4 commits after v1.2.3             1.2.3+git4.gabcdef012345
#   tag v1.2.3-rc1                     1.2.3~rc1      (sorts before 1.2.3)
#   no v* tag                          0.0.0+git<commits>.g<hash>
#   uncommitted changes                ...+dirty / ....dirty appended
#
# Two builds of one clean commit always get the same version.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
hash=$(git rev-parse --short=12 HEAD)
if desc=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
	rest=${desc%-g*}    # v1.2.3[-rc1]-N
	n=${rest##*-}       # N
	tag=${rest%-*}      # v1.2.3[-rc1]
	base=${tag#v}
	base=${base//-/\~}
	if [ "$n" = 0 ]; then
		v=$base
	else
		v="$base+git$n.g$hash"
	fi
else
	v="0.0.0+git$(git rev-list --count HEAD).g$hash"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	case "$v" in
	*+*) v="$v.dirty" ;;
	*) v="$v+dirty" ;;
	esac
fi
# Anything else outside Debian's version alphabet becomes '.'.
printf '%s\n' "$v" | sed 's/[^A-Za-z0-9.+~]/./g'
