#!/usr/bin/env bash
# Runs the shop's test suites against real sidecars (no Kubernetes):
#   recommendations (node --test), search (python -m unittest), ads (go test), and the
#   storefront with all three services and their sidecars (node --test).
# Ends with one line "shop: N passed, N failed" (tests, summed over the suites; a suite
# that crashes without reporting counts as 1 failed) and exits 1 if anything failed.
#
# Needs: node 20 and the repository built (npm run build; done here when dist/ is
# missing), go >= 1.22, python3 >= 3.11 with venv. The search service's Python
# dependencies (search/requirements.txt) are installed once into a cached virtualenv,
# ${XDG_CACHE_HOME:-~/.cache}/onnx-sidecar/venv-shop-search-<hash of requirements.txt>;
# SHOP_PYTHON names another interpreter that already has them.
set -uo pipefail
shop=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$shop/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0

note () { echo "== shop: $*"; }
count () { passed=$((passed + $1)); failed=$((failed + $2)); echo "-- $3: $1 passed, $2 failed"; }

if [ ! -f "$repo/dist/cli/main.js" ]; then
  note "npm run build (dist/ is missing)"
  (cd "$repo" && npm run build >/dev/null) || { echo "shop: 0 passed, 1 failed"; exit 1; }
fi

# The search service's Python.
python=${SHOP_PYTHON:-}
if [ -z "$python" ]; then
  hash=$(sha256sum "$shop/search/requirements.txt" | cut -c1-16)
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/onnx-sidecar/venv-shop-search-$hash"
  if [ ! -f "$venv/.complete" ]; then
    note "creating $venv (pip install -r search/requirements.txt)"
    partial="$venv.partial-$$"
    rm -rf "$partial"
    mkdir -p "$(dirname "$venv")"
    if python3 -m venv "$partial" && PIP_DISABLE_PIP_VERSION_CHECK=1 "$partial/bin/python" -m pip install -q --no-input -r "$shop/search/requirements.txt" \
       && "$partial/bin/python" -c 'import tritonclient.grpc'; then
      touch "$partial/.complete"
      # Renamed into place: bin/python still works (pip's scripts keep the old path;
      # nothing here runs them).
      rm -rf "$venv" && mv "$partial" "$venv"
    else
      rm -rf "$partial"
      echo "shop: could not install search/requirements.txt"; echo "shop: 0 passed, 1 failed"; exit 1
    fi
  fi
  python="$venv/bin/python"
fi

# node --test: "# pass N" / "# fail N"
node_suite () {
  local name=$1 file=$2 log="$work/$1.log"
  note "$name (node --test ${file#"$repo/"})"
  SHOP_PYTHON="$python" ADS_BIN="$work/ads" node --test --test-concurrency=1 "$file" >"$log" 2>&1
  local status=$? p f
  grep -E '^(not )?ok ' "$log"
  p=$(sed -nE 's/^# pass ([0-9]+)$/\1/p' "$log" | tail -n 1); f=$(sed -nE 's/^# fail ([0-9]+)$/\1/p' "$log" | tail -n 1)
  p=${p:-0}; f=${f:-0}
  if [ "$status" -ne 0 ]; then
    [ "$f" -eq 0 ] && f=1
    tail -n 60 "$log"
  fi
  count "$p" "$f" "$name"
}

note "ads: go build"
if ! (cd "$shop/ads" && go build -o "$work/ads" .); then count 0 1 "ads build"; fi

node_suite recommendations "$shop/recommendations/server_test.mjs"

note "search (python -m unittest, $python)"
(cd "$shop/search" && "$python" -m unittest -v test_server) >"$work/search.log" 2>&1
status=$?
grep -E ' \.\.\. (ok|FAIL|ERROR|skipped)' "$work/search.log" | sed -E 's/^([a-z_0-9]+) \(([^)]*)\).* \.\.\. /\1: /'
ran=$(sed -nE 's/^Ran ([0-9]+) tests? in.*/\1/p' "$work/search.log"); ran=${ran:-0}
bad=$(grep -cE ' \.\.\. (FAIL|ERROR)$' "$work/search.log")
if [ "$status" -ne 0 ]; then
  [ "$bad" -eq 0 ] && bad=1
  tail -n 60 "$work/search.log"
fi
count "$((ran - $(grep -cE ' \.\.\. (FAIL|ERROR)$' "$work/search.log")))" "$bad" search

note "ads (go test)"
(cd "$shop/ads" && go test -count=1 -v ./...) >"$work/ads-test.log" 2>&1
status=$?
grep -E '^\s*--- (PASS|FAIL)' "$work/ads-test.log"
p=$(grep -cE '^\s*--- PASS' "$work/ads-test.log"); f=$(grep -cE '^\s*--- FAIL' "$work/ads-test.log")
if [ "$status" -ne 0 ]; then
  [ "$f" -eq 0 ] && f=1
  tail -n 60 "$work/ads-test.log"
fi
count "$p" "$f" ads

node_suite storefront "$shop/storefront/server_test.mjs"

echo "shop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
