#!/usr/bin/env bash
# Runs caretaker's reliability trials (tests/it/crash.rs, fuzz.rs, load.rs)
# and prints a summary table. Short mode is what `cargo test` runs; --long
# runs 50 crash trials per action, 1,000,000 fuzz cases per target (release
# build, in-process) and the scrape test on a 200,000-pattern database.
# Sizes can be overridden with the environment variables the tests read:
# CARETAKER_CRASH_TRIALS, PROPTEST_CASES, CARETAKER_LOAD_NOTIFICATIONS,
# CARETAKER_LOAD_PATTERNS.
set -euo pipefail
usage() {
  echo "usage: scripts/reliability.sh [--long] [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
mode=short
for arg in "$@"; do
  case "$arg" in
    --long) mode=long ;;
    -h|--help) usage; exit 0 ;;
    *) echo "reliability.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

profile=()
if [ "$mode" = long ]; then
  export CARETAKER_CRASH_TRIALS="${CARETAKER_CRASH_TRIALS:-50}"
  export PROPTEST_CASES="${PROPTEST_CASES:-1000000}"
  export CARETAKER_LOAD_PATTERNS="${CARETAKER_LOAD_PATTERNS:-200000}"
  profile=(--release)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$(date +%s)
# One test at a time: the figures are latencies and rates.
cargo test --locked "${profile[@]}" --test it -- --test-threads=1 --nocapture --skip reload:: crash:: fuzz:: load:: 2>&1 | tee "$log" | grep -E '^test |RELIABILITY|panicked|test result' || true
grep -q 'test result: ok' "$log" || { echo "reliability trials FAILED"; exit 1; }

echo
echo "== summary ($(( $(date +%s) - start )) s, $mode mode) =="
grep -o 'RELIABILITY .*' "$log" | sed 's/^RELIABILITY //' | awk '
  { kind = $1; $1 = ""; printf "%-13s %s\n", kind, $0 }'
