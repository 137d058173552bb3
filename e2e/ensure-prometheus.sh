#!/usr/bin/env bash
# Makes sure a Prometheus server binary is on PATH (Debian's package), for the e2e test.
set -euo pipefail
if command -v prometheus >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "ensure-prometheus: prometheus is not installed; run: sudo apt-get install -y prometheus" >&2
  exit 1
fi
echo "ensure-prometheus: installing Debian's prometheus package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# --no-install-recommends: the server only (no node exporter, no web UI assets)
apt-get install -y -qq --no-install-recommends prometheus >&2
# the package's service is not wanted here; the test starts its own instance
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then systemctl stop prometheus || true; fi
