# A fleet on one host: N copies of one 2,000-pattern demo database found by
# one [[discover]] glob, default intervals, a backup folder each; caretaker
# with detail "full" and with detail "summary". Sourced by scripts/bench.sh
# --fleet (it uses record, port, wait_http, cpu_ticks, rss_mb, BIN, WORK).
#
# Per N and detail: seconds from start to /-/ready; idle CPU seconds per
# minute once every database's integrity check has run (a steady state: the
# collectors on their intervals, nothing written); resident memory after it;
# the median of FLEET_SCRAPES scrapes a second apart (each one encodes anew:
# collections land between them); the size of /metrics; seconds from one
# more database's file to its figures, and from its removal to their end.

# Run on its own, it only explains itself: scripts/bench.sh --fleet runs it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  usage() {
    echo "usage: scripts/bench.sh --fleet [--smoke]   (this file is sourced by it)"
    sed -n '1,/^[^#]/s/^# \{0,1\}//p' "$0"
  }
  case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    *) echo "fleet.sh: run it through scripts/bench.sh --fleet" >&2; usage >&2; exit 2 ;;
  esac
fi

FLEET_SIZES=${FLEET_SIZES:-"50 200 1000"}
FLEET_IDLE=${FLEET_IDLE:-60}
FLEET_SCRAPES=${FLEET_SCRAPES:-10}
if [ "$MODE" = smoke ]; then FLEET_SIZES="3 10" FLEET_IDLE=5 FLEET_SCRAPES=3; fi
FLEET=$WORK/fleet
mkdir -p "$FLEET"
echo "fleet: one demo database, copied up to ${FLEET_SIZES##* } times" >&2
"$BIN" demo --dir="$FLEET/seed" --patterns=2000 --pattern-bytes=200 --no-serve 2>/dev/null
# One clean file (the demo leaves its WAL checkpointed).
sqlite3 "$FLEET/seed/memory.db" "PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null

# fleet_config DIR N DETAIL: N databases under DIR/agents and their config.
fleet_dir() {
  local dir=$1 n=$2 i
  mkdir -p "$dir/agents"
  for i in $(seq -f "%04g" 1 "$n"); do
    [ -f "$dir/agents/a$i/.swarm/memory.db" ] && continue
    mkdir -p "$dir/agents/a$i/.swarm"
    cp --reflink=auto "$FLEET/seed/memory.db" "$dir/agents/a$i/.swarm/memory.db"
  done
  # Fewer databases than a larger size left behind: drop the extra ones.
  for d in "$dir"/agents/a*; do
    i=${d##*/a}
    [ "$((10#$i))" -le "$n" ] || rm -rf "$d"
  done
}

# metric_count URL NAME: how many series of NAME /metrics has.
metric_count() { curl -fsS "$1" | grep -c "^$2{" || true; }
# lines URL REGEX: how many lines of /metrics match (grep -c reads the whole
# body: grep -q would stop early, and curl's broken pipe fail the pipeline).
lines() { curl -fsS "$1" | grep -c "$2" || true; }

for n in $FLEET_SIZES; do
  fleet_dir "$FLEET/dbs" "$n"
  for detail in full summary; do
    cat > "$FLEET/dbs/caretaker-$detail.toml" <<TOML
[responder]
state_file = "state-$detail/caretaker-state.db"

[[discover]]
glob = "agents/*/.swarm/memory.db"
name = "{1}"
detail = "$detail"
[discover.backup]
dir = "backups/{1}"
TOML
    rm -rf "$FLEET/dbs/state-$detail" "$FLEET/dbs/backups"
    sync
    p=$(port)
    t0=$(date +%s.%N)
    "$BIN" serve --config.file="$FLEET/dbs/caretaker-$detail.toml" --web.listen-address="127.0.0.1:$p" \
      2>>"$FLEET/serve-$n-$detail.log" &
    PIDS+=($!); pid=$!
    wait_http "http://127.0.0.1:$p/-/ready"
    ready=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
    # Steady state: every database's integrity check (6-hourly) has run.
    for _ in $(seq 1 1200); do
      [ "$(metric_count "http://127.0.0.1:$p/metrics" 'caretaker_database_integrity_ok')" -ge "$n" ] && break
      sleep 0.5
    done
    sleep 2
    c0=$(cpu_ticks "$pid")
    sleep "$FLEET_IDLE"
    c1=$(cpu_ticks "$pid")
    cpu=$(python3 -c "print(f'{($c1 - $c0) / $CLK * 60 / $FLEET_IDLE:.2f}')")
    rss=$(rss_mb "$pid" VmRSS)
    lat=()
    for _ in $(seq 1 "$FLEET_SCRAPES"); do
      lat+=("$(curl -fsS -o /dev/null -w '%{time_total}' "http://127.0.0.1:$p/metrics")")
      sleep 1
    done
    scrape=$(python3 -c "import statistics, sys; print(f'{statistics.median(map(float, sys.argv[1:])) * 1000:.1f}')" "${lat[@]}")
    bytes=$(curl -fsS "http://127.0.0.1:$p/metrics" | wc -c)
    mb=$(python3 -c "print(f'{$bytes / 1e6:.3f}')")
    # One more project's database: seconds from its file to its figures
    # (the issue's 10 s), and from its removal to their absence.
    new="$FLEET/dbs/agents/a9999"
    mkdir -p "$new/.swarm"
    t0=$(date +%s.%N)
    cp "$FLEET/seed/memory.db" "$new/.swarm/memory.db"
    for _ in $(seq 1 600); do
      [ "$(lines "http://127.0.0.1:$p/metrics" '^caretaker_patterns{database="a9999"[,}]')" -gt 0 ] && break
      sleep 0.1
    done
    appeared=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
    t0=$(date +%s.%N)
    rm -rf "$new"
    for _ in $(seq 1 600); do
      [ "$(lines "http://127.0.0.1:$p/metrics" 'database="a9999"')" -eq 0 ] && break
      sleep 0.1
    done
    gone=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    t() { if [ "$n" = 1000 ]; then echo "$1"; else echo "-"; fi; }
    record "fleet $n databases, detail=$detail: start to ready, s" "$ready" - - "$(t "<= 30")"
    record "fleet $n databases, detail=$detail: idle CPU s per minute" "$cpu" - - "$(t "<= 6")"
    record "fleet $n databases, detail=$detail: resident memory, MB" "$rss" - - "$(t "<= 150")"
    record "fleet $n databases, detail=$detail: scrape, median ms" "$scrape" - - "$(t "<= 50")"
    if [ "$detail" = summary ]; then target=$(t "<= 3"); else target=-; fi
    record "fleet $n databases, detail=$detail: /metrics, MB" "$mb" - - "$target"
    record "fleet $n databases, detail=$detail: one more database's figures, s" "$appeared" - - "<= 10"
    record "fleet $n databases, detail=$detail: its figures gone after its removal, s" "$gone" - - "<= 10"
  done
done
