#!/usr/bin/env bash
# Checks caretaker's Debian package on this machine: builds it from the debug
# build (scripts/package.sh --profile dev --fast), checks its file list, then
# installs it with dpkg -i, runs the installed binary on the shipped
# configuration, checks the manual page, the bash completion, the system user
# and the unit (systemd-analyze verify, and a security exposure of at most
# MAX_EXPOSURE), removes it (configuration and state stay), purges it (the
# configuration goes, state stays) and checks that nothing else is left.
# Needs root (or sudo) and no caretaker package installed. What needs a
# running systemd is described in docs/security.md ("The systemd unit").
#
#   scripts/check-package.sh            (from anywhere; works in the repo root)
set -euo pipefail
usage() {
  echo "usage: scripts/check-package.sh [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    *) echo "check-package.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."

MAX_EXPOSURE=1.5
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
fail() { echo "check-package.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "ok    $*"; }

# man (man-db) reads the page; systemd-analyze (systemd) checks the unit.
missing=()
command -v man >/dev/null 2>&1 || missing+=(man-db)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if dpkg-query -W -f='${Status}' caretaker 2>/dev/null | grep -qv 'not-installed'; then
  fail "a caretaker package is already installed here; remove it first (dpkg -P caretaker)"
fi
had_user=no
getent passwd caretaker >/dev/null && had_user=yes
had_state=no
[ -e /var/lib/caretaker ] && had_state=yes
TMP=$(mktemp -d)
installed=no
cleanup() {
  if [ "$installed" = yes ]; then sudo_if_needed dpkg -P caretaker >/dev/null 2>&1 || true; fi
  # Leave the machine as it was: the state folder and user the package keeps.
  if [ "$had_state" = no ]; then sudo_if_needed rm -rf /var/lib/caretaker; fi
  if [ "$had_user" = no ] && getent passwd caretaker >/dev/null; then
    sudo_if_needed userdel caretaker || true
    if getent group caretaker >/dev/null; then sudo_if_needed groupdel caretaker || true; fi
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# Every file outside the package database, to find what a purge leaves.
snapshot() {
  sudo_if_needed find /etc /lib/systemd /usr /var/lib /var/cache/man -xdev \
    \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /var/cache/man \) -prune -o -print 2>/dev/null | sort
}

# ------------------------------------------------------------------ build
start=$(date +%s)
deb=$(scripts/package.sh --profile dev --fast | tail -n 1)
ok "built $deb ($(du -h "$deb" | cut -f1)) in $(( $(date +%s) - start )) s"

# ------------------------------------------------------------------ contents
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$TMP/files"
expected=(
  /usr/bin/caretaker
  /lib/systemd/system/caretaker.service
  /usr/lib/sysusers.d/caretaker.conf
  /etc/caretaker/caretaker.toml
  /usr/share/caretaker/alerts/caretaker.rules.yml
  /usr/share/caretaker/alerts/responder.rules.yml
  /usr/share/doc/caretaker/runbooks.md
  /usr/share/doc/caretaker/copyright
  /usr/share/man/man1/caretaker.1.gz
  /usr/share/bash-completion/completions/caretaker
  /usr/share/zsh/vendor-completions/_caretaker
  /usr/share/fish/vendor_completions.d/caretaker.fish
)
for d in dashboards/*.json; do expected+=("/usr/share/caretaker/$d"); done
# A page for each subcommand that --help lists.
for sub in $(target/debug/caretaker --help | awk '/^Commands:/{on=1; next} /^$/{on=0} on {print $1}'); do
  [ "$sub" = help ] || expected+=("/usr/share/man/man1/caretaker-$sub.1.gz")
done
for f in "${expected[@]}"; do
  grep -qx -- "$f" "$TMP/files" || fail "$deb lacks $f"
done
dpkg-deb -f "$deb" Depends | grep -q 'adduser | systemd' || fail "Depends lacks adduser | systemd"
dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx /etc/caretaker/caretaker.toml \
  || fail "/etc/caretaker/caretaker.toml is not a conffile"
ok "file list: ${#expected[@]} expected files, caretaker.toml a conffile"

# ------------------------------------------------------------------ install
snapshot >"$TMP/before"
installed=yes
sudo_if_needed dpkg -i "$deb" >"$TMP/dpkg-i.log" 2>&1 || { cat "$TMP/dpkg-i.log" >&2; fail "dpkg -i"; }
# Installing again is an upgrade: postinst runs with the old version.
sudo_if_needed dpkg -i "$deb" >>"$TMP/dpkg-i.log" 2>&1 || { cat "$TMP/dpkg-i.log" >&2; fail "dpkg -i (again)"; }
ok "dpkg -i, twice"

getent passwd caretaker | grep -q ':/var/lib/caretaker:/usr/sbin/nologin$' \
  || fail "no system user caretaker with home /var/lib/caretaker: $(getent passwd caretaker || true)"
[ "$(stat -c %U:%a /var/lib/caretaker)" = caretaker:750 ] || fail "/var/lib/caretaker: $(stat -c %U:%a /var/lib/caretaker)"
[ "$(sudo_if_needed stat -c %U:%a /etc/caretaker/token)" = caretaker:600 ] || fail "/etc/caretaker/token is not caretaker's, 0600"
ok "user caretaker, /var/lib/caretaker, token"

/usr/bin/caretaker check-config --config.file=/etc/caretaker/caretaker.toml >"$TMP/check.log" 2>&1 \
  || { cat "$TMP/check.log" >&2; fail "check-config on the shipped configuration"; }
ok "installed check-config: $(grep -m 1 valid "$TMP/check.log")"

# The service's user writes its state where the unit says (CARETAKER_STATE_DIR).
sudo_if_needed runuser -u caretaker -- env CARETAKER_STATE_DIR=/var/lib/caretaker \
  /usr/bin/caretaker history --config.file=/etc/caretaker/caretaker.toml >/dev/null \
  || fail "caretaker history as the caretaker user"
[ -f /var/lib/caretaker/caretaker-state.db ] || fail "no state database in /var/lib/caretaker"
ok "the caretaker user keeps its state in /var/lib/caretaker"

[ "$(man -w caretaker)" = /usr/share/man/man1/caretaker.1.gz ] || fail "man -w caretaker: $(man -w caretaker 2>&1)"
MANPAGER=cat MANWIDTH=100 man caretaker-run 2>/dev/null | grep -q -- '--dry-run' || fail "man caretaker-run does not show --dry-run"
ok "man caretaker, man caretaker-run"

words=$(bash -c 'source /usr/share/bash-completion/completions/caretaker
  COMP_WORDS=(caretaker check); COMP_CWORD=1; _caretaker caretaker check caretaker; echo "${COMPREPLY[*]}"')
[ "$words" = check-config ] || fail "bash completion of 'caretaker check' gave '$words'"
ok "bash completion"

systemd-analyze verify /lib/systemd/system/caretaker.service >"$TMP/verify.log" 2>&1 \
  || { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify"; }
[ ! -s "$TMP/verify.log" ] || { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify printed warnings"; }
exposure=$(systemd-analyze security --offline=yes /lib/systemd/system/caretaker.service 2>/dev/null \
  | sed -n 's/.*Overall exposure level for caretaker.service: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] || fail "systemd-analyze security gave no score"
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' \
  || fail "exposure $exposure is above $MAX_EXPOSURE"
ok "systemd-analyze verify clean; security exposure $exposure (at most $MAX_EXPOSURE)"

# ------------------------------------------------------------------ remove
sudo_if_needed dpkg -r caretaker >"$TMP/dpkg-r.log" 2>&1 || { cat "$TMP/dpkg-r.log" >&2; fail "dpkg -r"; }
[ ! -e /usr/bin/caretaker ] || fail "dpkg -r left /usr/bin/caretaker"
[ ! -e /lib/systemd/system/caretaker.service ] || fail "dpkg -r left the unit"
[ -f /etc/caretaker/caretaker.toml ] || fail "dpkg -r removed the configuration"
sudo_if_needed test -f /etc/caretaker/token || fail "dpkg -r removed the token"
[ -f /var/lib/caretaker/caretaker-state.db ] || fail "dpkg -r removed the state"
getent passwd caretaker >/dev/null || fail "dpkg -r removed the user"
ok "dpkg -r: program gone, configuration, token, state and user kept"

sudo_if_needed dpkg -P caretaker >"$TMP/dpkg-p.log" 2>&1 || { cat "$TMP/dpkg-p.log" >&2; fail "dpkg -P"; }
installed=no
[ ! -e /etc/caretaker ] || fail "dpkg -P left /etc/caretaker: $(ls -A /etc/caretaker)"
[ -f /var/lib/caretaker/caretaker-state.db ] || fail "dpkg -P removed the state"
snapshot >"$TMP/after"
left=$(comm -13 "$TMP/before" "$TMP/after" | grep -v -e '^/var/lib/caretaker\(/\|$\)' || true)
[ -z "$left" ] || fail "dpkg -P left files: $left"
ok "dpkg -P: configuration gone, state kept, nothing else left"
echo "package checks passed in $(( $(date +%s) - start )) s"
