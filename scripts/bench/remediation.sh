#!/usr/bin/env bash
# Seconds from "the backup folder is empty" (CaretakerBackupMissing) becoming
# true to the backup job it triggers finishing, through Debian's Prometheus
# (scrape and evaluation every 1 s, the shipped rules with `for: 0s`) and
# Alertmanager (group_wait 1 s). Prints the seconds.
#   remediation.sh CARETAKER_BIN DEMO_DIR WORK_DIR
set -euo pipefail
usage() {
  echo "usage: scripts/bench/remediation.sh CARETAKER_BIN DEMO_DIR WORK_DIR"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "remediation.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac
if [ $# -ne 3 ]; then usage >&2; exit 2; fi
BIN=$1 DEMO=$2 W=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
M="python3 $ROOT/scripts/bench/measure.py"
mkdir -p "$W"
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
CP=$($M port) PP=$($M port) AP=$($M port)
TOKEN=$(tr -d '\n' < "$DEMO/token")

cat > "$W/caretaker.toml" <<TOML
[web]
token_file = "$DEMO/token"
[collect]
patterns_interval = "1s"
database_interval = "1s"
[[database]]
name = "memory"
path = "$DEMO/memory.db"
[database.backup]
dir = "$W/backups"
[responder]
state_file = "$W/caretaker-state.db"
[[rule]]
name = "backup"
matchers = ['alertname="CaretakerBackupMissing"']
actions = ["backup"]
cooldown = "1s"
TOML
sed -E 's/^( +)for: .*/\1for: 0s/' "$ROOT/alerts/caretaker.rules.yml" > "$W/rules.yml"
cat > "$W/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$W/rules.yml"]
alerting: {alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AP"]}]}]}
scrape_configs: [{job_name: caretaker, static_configs: [{targets: ["127.0.0.1:$CP"]}]}]
YML
cat > "$W/alertmanager.yml" <<YML
route: {receiver: caretaker, group_by: [alertname, database], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}
receivers:
  - name: caretaker
    webhook_configs:
      - url: http://127.0.0.1:$CP/hooks/alertmanager
        http_config: {authorization: {credentials_file: "$DEMO/token"}}
YML

# Start from one good backup.
"$BIN" run backup --config.file="$W/caretaker.toml" >/dev/null 2>&1
"$BIN" serve --config.file="$W/caretaker.toml" --web.listen-address="127.0.0.1:$CP" 2>"$W/caretaker.log" &
PIDS+=($!)
prometheus-alertmanager --config.file="$W/alertmanager.yml" --storage.path="$W/am" \
  --web.listen-address="127.0.0.1:$AP" --cluster.listen-address= 2>"$W/alertmanager.log" &
PIDS+=($!)
prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" \
  --web.listen-address="127.0.0.1:$PP" 2>"$W/prometheus.log" &
PIDS+=($!)
# Wait for Prometheus to have scraped caretaker.
for _ in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$PP/api/v1/query?query=caretaker_backup_files" 2>/dev/null | grep -q '"value"' && break
  sleep 0.1
done
T0=$(date +%s.%N)
rm -f "$W"/backups/memory-*
for _ in $(seq 1 1200); do
  done_at=$(curl -fsS -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$CP/api/v1/actions?action=backup&status=succeeded&limit=5" 2>/dev/null |
    python3 -c "import json,sys; j=[x for x in json.load(sys.stdin)['jobs'] if x['source'] != 'cli' and (x.get('finished_at') or 0) > $T0]; print(j[0]['finished_at'] if j else '')" || true)
  if [ -n "$done_at" ]; then
    python3 -c "print(f'{$done_at - $T0:.2f}')"
    exit 0
  fi
  sleep 0.05
done
echo "remediation: no backup job finished within 60 s" >&2
exit 1
