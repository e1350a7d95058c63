#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer in a
# scratch copy (the normal build/ is left alone) and runs the native tests
# against it. Node itself is not instrumented, so the sanitizer runtimes are
# preloaded before node starts (LD_PRELOAD), the known way for N-API addons.
#
#   npm run test:sanitize            # all native tests
#   npm run test:sanitize -- ring    # only test files whose path contains "ring"
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.tmp/sanitize"
rm -rf "$work" && mkdir -p "$work"
cp -r "$root/native" "$root/binding.gyp" "$root/package.json" "$work/"
ln -s "$root/node_modules" "$work/node_modules"

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
echo "sanitize: building the addon with: $flags"
(cd "$work" && CFLAGS="$flags" CXXFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
  node "$root/scripts/build-native.mjs" "$work" >"$work/build.log" 2>&1) || {
  tail -50 "$work/build.log"; echo "sanitize: build failed (log: $work/build.log)"; exit 1; }

# A run against an uninstrumented addon would prove nothing: check first.
symbols="$(nm -D "$work/build/Release/vrep.node")"
grep -q "__asan_report" <<<"$symbols" && grep -q "__ubsan_handle" <<<"$symbols" || {
  echo "sanitize: the built addon is not instrumented"; exit 1; }

asan="$(gcc -print-file-name=libasan.so)"
ubsan="$(gcc -print-file-name=libubsan.so)"
[ -f "$asan" ] && [ -f "$ubsan" ] || { echo "sanitize: libasan/libubsan not found (gcc runtime)"; exit 1; }

# Leak detection is off: node's own allocations at exit are not ours.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export VREP_ADDON_PATH="$work/build/Release/vrep.node"
export LD_PRELOAD="$asan:$ubsan"
cd "$root"
if [ "$#" -eq 0 ]; then set -- test/native/; fi
echo "sanitize: running tests under ASan+UBSan ($VREP_ADDON_PATH)"
node scripts/test.mjs "$@"
