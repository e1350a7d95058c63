#!/usr/bin/env bash
# Installs promtool (from Debian's prometheus package) so test/server/metrics.test.ts
# also checks /metrics with `promtool check metrics`, Prometheus's own linter.
# The package's prometheus service is not needed and not started by us.
# Idempotent: does nothing when promtool is already on PATH.
#
#   npm run test:deps
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  echo "install-promtool: $(promtool --version 2>&1 | head -n 1) already installed"
  exit 0
fi

fail() {
  echo "install-promtool: $*" >&2
  echo "install-promtool: install promtool by hand (on PATH) to lint /metrics in the tests; without it that part is skipped" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "apt-get not found (not a Debian/Ubuntu machine)"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  fail "not root and sudo is not available"
fi

# Only refresh the package lists when apt does not know the package yet.
if ! apt-cache show prometheus >/dev/null 2>&1; then
  echo "install-promtool: apt-get update"
  "${SUDO[@]}" apt-get update -q || fail "apt-get update failed"
fi

echo "install-promtool: apt-get install prometheus (for promtool)"
# policy-rc.d-less containers may print a warning about the service, which is harmless.
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends prometheus ||
  fail "apt-get install prometheus failed"

command -v promtool >/dev/null 2>&1 || fail "promtool still not on PATH after the install"
echo "install-promtool: $(promtool --version 2>&1 | head -n 1) installed"
