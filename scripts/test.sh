#!/usr/bin/env bash
# Runs every check and test of caretaker, the Debian package's included
# (installed, checked and purged again: needs root or sudo). Installs what the
# end-to-end tests use when it is missing: Debian's prometheus,
# prometheus-alertmanager and chromium, sqlite3, age, zstd, rclone and openssl, the Python
# prometheus-client parser, moto's S3 server, and cargo-deb (cargo install).
set -euo pipefail
usage() {
  echo "usage: scripts/test.sh [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Debian's sqlite3 (the image's): tests/it/runbook_sections.rs runs the runbooks' steps with it.
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
# Debian's age decrypts what caretaker uploads (tests/it/offsite.rs); zstd decompresses it.
command -v age >/dev/null 2>&1 || missing+=(age)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
# Debian's rclone lists and downloads what caretaker uploads (tests/it/offsite_interop.rs).
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
# Debian's openssl makes the CA and certificates of tests/it/tls.rs.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -c 'import prometheus_client' 2>/dev/null || python3 -m pip install -q prometheus-client
# moto's standalone S3 server (and boto3, with it): tests/it/offsite.rs starts it on a loopback port.
command -v moto_server >/dev/null 2>&1 || python3 -m pip install -q "moto[server]"

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
scripts/bench.sh --smoke
if [ -x scripts/check-deploy.sh ]; then
  scripts/check-deploy.sh
fi
# The Debian package, from the debug build above: installs, checks, purges.
scripts/check-package.sh
echo "all tests passed"
