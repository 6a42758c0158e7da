#!/usr/bin/env bash
# Builds caretaker's Debian package into target/debian/ and prints its path
# on the last line: builds the binary, writes the manual pages and shell
# completions from the clap definitions (`caretaker generate-docs`, into
# target/package-docs/), then runs cargo-deb with [package.metadata.deb] of
# Cargo.toml. Installs cargo-deb (the version pinned below) with
# `cargo install --locked` when it is missing.
#
#   scripts/package.sh                 release build (a few minutes on 2 cores)
#   scripts/package.sh --profile dev   package the debug build `cargo test`
#                                      already made (scripts/check-package.sh)
#   scripts/package.sh --fast          faster, larger compression
set -euo pipefail
usage() {
  echo "usage: scripts/package.sh [--profile release|dev] [--fast] [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
CARGO_DEB_VERSION=3.8.0
profile=release
fast=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --profile) [ $# -ge 2 ] || { usage >&2; exit 2; }; profile=$2; shift ;;
    --profile=*) profile=${1#--profile=} ;;
    --fast) fast=(--fast) ;;
    *) echo "package.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case "$profile" in
  release) bindir=target/release ;;
  dev) bindir=target/debug ;;
  *) echo "package.sh: --profile must be release or dev" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
  echo "installing cargo-deb $CARGO_DEB_VERSION" >&2
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked >&2
fi
installed=$(cargo deb --version 2>/dev/null | awk '{print $NF}')
if [ "$installed" != "$CARGO_DEB_VERSION" ]; then
  echo "package.sh: warning: cargo-deb $installed, tested with $CARGO_DEB_VERSION" >&2
fi

cargo build --locked --profile "$profile" --bin caretaker >&2
rm -rf target/package-docs
"$bindir/caretaker" generate-docs --out target/package-docs >/dev/null
# cargo-deb 3.8 warns that --profile dev is meant to become an error; the
# version is pinned, and the test only needs the files, not an optimised binary.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
deb="target/debian/caretaker_${version}-1_$(dpkg --print-architecture).deb"
rm -f "$deb"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# --strip: [profile.release] keeps debug info for profiling (112 MB binary);
# the package ships the stripped binary (14 MB installed).
cargo deb --locked --no-build --strip --profile "$profile" ${fast[@]+"${fast[@]}"} >"$log" 2>&1 || status=$?
grep -v -e 'dev profile is not supported' -e 'To enable debug symbols set' "$log" >&2 || true
[ "$status" -eq 0 ] || { echo "package.sh: cargo deb failed ($status)" >&2; exit 1; }
[ -f "$deb" ] || { echo "package.sh: $deb was not built" >&2; exit 1; }
echo "$deb"
