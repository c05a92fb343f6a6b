#!/usr/bin/env bash
# Checks the Prometheus alert rules and the dashboard's queries with
# promtool:
#   promtool check rules signer-agent-alerts.yml
#   promtool test rules  signer-agent-alerts_test.yml
#   promtool check rules on every dashboard query, as recording rules
# The metric names both files use, and the dashboard's structure, are
# checked by `go test ./internal/metrics/`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PROMTOOL="${PROMTOOL:-promtool}"
if ! command -v "$PROMTOOL" >/dev/null 2>&1; then
	echo "check.sh: promtool not found; install it with: apt-get install -y prometheus" >&2
	echo "(or set PROMTOOL to its path)" >&2
	exit 1
fi
if ! command -v python3 >/dev/null 2>&1; then
	echo "check.sh: python3 not found (needed to read the dashboard); install it with: apt-get install -y python3" >&2
	exit 1
fi

"$PROMTOOL" check rules signer-agent-alerts.yml
"$PROMTOOL" test rules signer-agent-alerts_test.yml

# Every dashboard query must parse: write them as recording rules (JSON is
# YAML) with the Grafana variables filled in, and let promtool check them.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - signer-agent-dashboard.json >"$tmp/dashboard-queries.yml" <<'PY'
import json, sys
dash = json.load(open(sys.argv[1]))
rules = []
for p in dash["panels"]:
    for t in p.get("targets", []):
        expr = t["expr"].replace("$__rate_interval", "5m").replace("$instance", ".*")
        rules.append({"record": "dashboard:panel%d:%s" % (p["id"], t["refId"]), "expr": expr})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, indent=1)
PY
echo "Dashboard queries:"
"$PROMTOOL" check rules "$tmp/dashboard-queries.yml"
