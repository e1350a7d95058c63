#!/usr/bin/env bash
# Installs Debian's redis-server (Redis 7 on bookworm) for bench/replication.bench.ts,
# which starts its own redis-server processes: no Redis service is needed or used.
# Idempotent: does nothing when redis-server is already on PATH.
#
#   npm run bench:deps
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "install-redis: $(redis-server --version | head -n 1) already installed"
  exit 0
fi

fail() {
  echo "install-redis: $*" >&2
  echo "install-redis: install Redis >= 7 by hand (redis-server on PATH) to run the replication bench" >&2
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
if ! apt-cache show redis-server >/dev/null 2>&1; then
  echo "install-redis: apt-get update"
  "${SUDO[@]}" apt-get update -q || fail "apt-get update failed"
fi

echo "install-redis: apt-get install redis-server"
# The package's service is not started by us and not needed by the bench;
# policy-rc.d-less containers may print a warning about it, which is harmless.
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q --no-install-recommends redis-server ||
  fail "apt-get install redis-server failed"

command -v redis-server >/dev/null 2>&1 || fail "redis-server still not on PATH after the install"
echo "install-redis: $(redis-server --version | head -n 1) installed"
