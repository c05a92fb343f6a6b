#!/usr/bin/env bash
# Agent CPU per sign request (issue #13): for each git revision given (default:
# the merge base of this branch with the commit issue #13 measured, and HEAD),
# build signer-agent, run it in dev mode, send N sign requests from 16 callers
# with this tree's signerctl, and divide the agent process's CPU time (utime +
# stime from /proc/PID/stat) by N. The durable audit log is on. Rounds are
# interleaved so drift on a shared machine hits every revision alike; the
# figure is the median of the rounds.
#
#   test/bench/cpu.sh [REV...]        env: N (default 20000), ROUNDS (3),
#                                     BENCH_FLAGS (extra signerctl bench flags,
#                                     e.g. --no-idempotency-keys)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-20000}
ROUNDS=${ROUNDS:-3}
revs=("$@")
if [ ${#revs[@]} -eq 0 ]; then revs=(c16af4b HEAD); fi
work=$(mktemp -d /tmp/sa-cpu.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/signerctl" ./cmd/signerctl
for rev in "${revs[@]}"; do
  git worktree add -q --detach "$work/src-$rev" "$rev"
  (cd "$work/src-$rev" && go build -o "$work/agent-$rev" ./cmd/signer-agent)
  git worktree remove --force "$work/src-$rev"
done
hz=$(getconf CLK_TCK)
declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for rev in "${revs[@]}"; do
    state="$work/state-$rev-$round"
    "$work/agent-$rev" --dev --state-dir "$state" >"$state.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [ -S "$state/api.sock" ] && break; sleep 0.1; done
    export SIGNER_AGENT_SOCKET="unix://$state/api.sock"
    "$work/signerctl" dev token --state-dir "$state" --ttl 10m --out "$state.creds" >/dev/null
    # warm up (JWKS cache, nonce, connections)
    "$work/signerctl" bench --credentials "$state.creds" --requests 500 >/dev/null
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    "$work/signerctl" bench --credentials "$state.creds" --requests "$N" ${BENCH_FLAGS:-} --json >"$state.bench.json"
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    kill -TERM "$pid"; wait "$pid" || true
    us=$(awk -v d=$(( (u1 - u0) + (s1 - s0) )) -v hz="$hz" -v n="$N" 'BEGIN { printf "%.1f", d / hz / n * 1e6 }')
    rps=$(sed -n 's/.*"requestsPerSecond": *\([0-9.]*\).*/\1/p' "$state.bench.json" | head -1)
    echo "round $round  $rev  agent CPU/request ${us} µs  throughput ${rps:-?} req/s"
    results[$rev]+="$us "
  done
done
for rev in "${revs[@]}"; do
  med=$(echo ${results[$rev]} | tr ' ' '\n' | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')
  echo "median  $rev  ${med} µs/request"
done
