#!/usr/bin/env bash
# Checks and unit-tests deploy/monitoring with promtool (built once by ensure-promtool.sh):
#   promtool check rules   the PrometheusRule's groups, and every Argo Rollouts / Flagger query
#                          as a recording rule (test/fixtures/monitoring/rule-files.ts)
#   promtool test rules    deploy/monitoring/tests/*.test.yaml against them
# Exits non-zero when either fails; the last line says "monitoring: PASS" or "monitoring: FAIL".
set -uo pipefail
cd "$(dirname "$0")/.."
promtool="$(bash scripts/ensure-promtool.sh | tail -n 1)" || { echo "monitoring: FAIL (no promtool)"; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npx tsx test/fixtures/monitoring/write-rule-files.ts "$work" || { echo "monitoring: FAIL (rule files)"; exit 1; }
cp deploy/monitoring/tests/*.test.yaml "$work/"
status=0
"$promtool" check rules "$work/rules.yaml" "$work/template-queries.yaml" || status=1
(cd "$work" && "$promtool" test rules ./*.test.yaml) || status=1
if [ "$status" -eq 0 ]; then echo "monitoring: PASS"; else echo "monitoring: FAIL"; fi
exit "$status"
