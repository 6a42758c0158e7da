#!/usr/bin/env bash
# Benchmarks caretaker against the tools the runbooks use today, each pair in
# the same run. See docs/benchmarks.md for what is measured and the results.
#
#   scripts/bench.sh            full: 5,000- and 1,000,000-pattern databases (~20 min)
#   scripts/bench.sh --smoke    small database, short runs (< 60 s): checks that every
#                               measurement produces a number; no timing thresholds
#   scripts/bench.sh --fleet    only the fleet rows: 50, 200 and 1,000 copies of one
#                               2,000-pattern database under one [[discover]] glob, with
#                               detail "full" and "summary" (~15 min; 2.3 GB of copies);
#                               with --smoke: 3 and 10 copies, short windows
#   scripts/bench.sh --offsite  only step 8: the offsite copies to moto's S3 server and the
#                               restore drills, on the 1,000,000-pattern database (~5 min
#                               when BENCH_LARGE_DIR is made); with --smoke: the small one
#
# BENCH_DIR (default $CARGO_TARGET_DIR/bench, else target/bench) holds the databases; BENCH_LARGE_DIR reuses a
# 1,000,000-pattern demo folder made earlier; CARETAKER_BIN skips the build.
set -euo pipefail
usage() {
  echo "usage: scripts/bench.sh [--smoke] [--fleet|--offsite] [-h|--help]"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
MODE=full
FLEET=0 ONLY_OFFSITE=0
for arg in "$@"; do
  case "$arg" in
    --smoke) MODE=smoke ;;
    --fleet) FLEET=1 ;;
    --offsite) ONLY_OFFSITE=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
ROOT=$PWD
# Cargo's target folder: CARGO_TARGET_DIR when set (relative to the repository).
TARGET=${CARGO_TARGET_DIR:-target}
case "$TARGET" in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
M="python3 $ROOT/scripts/bench/measure.py"

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
for pair in sqlite3:sqlite3 wrk:wrk webhook:webhook prometheus-node-exporter:prometheus-node-exporter \
  prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager rclone:rclone age-keygen:age; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_if_needed apt-get -o DPkg::Lock::Timeout=600 update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v moto_server >/dev/null 2>&1 || python3 -m pip install -q "moto[server]"

if [ "$MODE" = smoke ]; then
  [ -n "${CARETAKER_BIN:-}" ] || cargo build --locked -q
  BIN=${CARETAKER_BIN:-$TARGET/debug/caretaker}
  RUNS=3 BACKUP_RUNS=1 WRK_SECONDS=1 WH_RUNS=1 SMALL=2000 DELTAS=3
else
  [ -n "${CARETAKER_BIN:-}" ] || cargo build --locked --release -q
  BIN=${CARETAKER_BIN:-$TARGET/release/caretaker}
  RUNS=5 BACKUP_RUNS=3 WRK_SECONDS=10 WH_RUNS=3 SMALL=5000 DELTAS=60
fi
WORK=${BENCH_DIR:-$TARGET/bench}/$MODE
[ "$FLEET" = 0 ] || WORK=$WORK-fleet
[ "$ONLY_OFFSITE" = 0 ] || WORK=$WORK-offsite
rm -rf "$WORK" && mkdir -p "$WORK"
RESULTS=$WORK/results.txt
: > "$RESULTS"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
# record NAME CARETAKER PEER KIND TARGET: one row of the table (KIND lower|higher|-).
record() { echo "$1 | $2 | $3 | $4 | $5" >> "$RESULTS"; echo "  $1: caretaker $2, peer $3" >&2; }
port() { $M port; }
wait_http() { for _ in $(seq 1 600); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "bench: $1 never answered" >&2; return 1; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk -v k="$2:" '$1 == k {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
CLK=$(getconf CLK_TCK)

if [ "$FLEET" = 1 ]; then
  . "$ROOT/scripts/bench/fleet.sh"
  echo >&2
  $M table "$RESULTS" --check | tee "$WORK/results.md"
  echo "bench ($MODE, fleet): results in $WORK/results.md" >&2
  exit 0
fi

# demo DIR PATTERNS BYTES: a demo folder (database, token, config, first backup).
# Snapshots are off in caretaker.toml (the snapshot loop would take backups of
# its own while the other steps measure) and on in caretaker-incremental.toml (step 4b).
# Its offsite copy is dropped too: step 3's backups do what seed 001's script
# does (step 8 measures the offsite copies).
demo() {
  [ -f "$1/memory.db" ] || "$BIN" demo --dir="$1" --patterns="$2" --pattern-bytes="$3" --no-serve 2>/dev/null
  sed -i '/^incremental_interval = /d; /^full_interval = /d' "$1/caretaker.toml"
  sed -i '/^\[database.backup.offsite\]$/,/^\[database.prune\]$/{/^\[database.prune\]$/!d}' "$1/caretaker.toml"
  if grep -q '^\[database.backup.offsite\]' "$1/caretaker.toml"; then echo "bench: $1: offsite section left" >&2; exit 1; fi
  sed 's/^\[database.backup\]$/[database.backup]\nincremental_interval = "1m"/' "$1/caretaker.toml" > "$1/caretaker-incremental.toml"
  grep -q '^incremental_interval' "$1/caretaker-incremental.toml"
}
echo "generating the databases" >&2
demo "$WORK/small" "$SMALL" 200
SIZES=(small)
if [ "$MODE" = full ]; then
  LARGE=${BENCH_LARGE_DIR:-${BENCH_DIR:-$TARGET/bench}/large}
  demo "$LARGE" 1000000 450
  SIZES=(small large)
fi
dir_of() { if [ "$1" = small ]; then echo "$WORK/small"; else echo "$LARGE"; fi; }
# Waits until the disk has been quiet for 5 s (every fsync of a small file
# under 10 ms): deleting gigabytes on a disk mounted with `discard` keeps it
# busy for seconds after `sync`, and a step that fsyncs must not pay for the
# step before it.
settle_disk() { sync; $M settle "$WORK/settle.tmp"; }
median() { printf '%s\n' "$@" | python3 -c 'import sys, statistics; print(f"{statistics.median(float(x) for x in sys.stdin):.4f}")'; }

if [ "$ONLY_OFFSITE" = 1 ]; then
  d=$(dir_of "${SIZES[-1]}")
  . "$ROOT/scripts/bench/offsite.sh"
  echo >&2
  $M table "$RESULTS" --check | tee "$WORK/results.md"
  echo "bench ($MODE, offsite): results in $WORK/results.md" >&2
  exit 0
fi

# 1. One collection of every seed figure against the seeds' queries.
for size in "${SIZES[@]}"; do
  d=$(dir_of "$size")
  read -r w c < <($M runs "$RUNS" "$BIN" collect --once --config.file="$d/caretaker.toml")
  read -r pw pc < <($M runs "$RUNS" "$ROOT/scripts/bench/seed_queries.sh" "$d/memory.db")
  record "collect $size: wall s" "$w" "$pw" lower "<= 0.25"
  record "collect $size: CPU s" "$c" "$pc" lower "-"
done
"$BIN" collect --once --config.file="$(dir_of "${SIZES[-1]}")/caretaker.toml" > "$WORK/collect.json" 2>/dev/null

# serve DIR CONFIG PORT: caretaker serve in the background, ready when it returns.
serve() {
  "$BIN" serve --config.file="$2" --web.listen-address="127.0.0.1:$3" 2>>"$WORK/serve.log" &
  PIDS+=($!); SERVE_PID=$!
  wait_http "http://127.0.0.1:$3/-/ready"
}
# scrape NAME URL PID: wrk against URL; records p50, req/s and the server's CPU per request.
scrape() {
  local t0 t1 p50 p99 rps bad
  t0=$(cpu_ticks "$3")
  wrk -t1 -c1 -d"${WRK_SECONDS}s" --latency "$2" > "$WORK/wrk-$1.txt"
  t1=$(cpu_ticks "$3")
  read -r p50 p99 rps bad < <($M wrk "$WORK/wrk-$1.txt")
  echo "$p50 $rps $(python3 -c "print(f'{($t1 - $t0) / $CLK * 1000 / max($rps * $WRK_SECONDS, 1):.4f}')") $bad"
}

# 2 and 6. /metrics against node_exporter; resident memory.
NE_PORT=$(port)
prometheus-node-exporter --web.listen-address="127.0.0.1:$NE_PORT" 2>>"$WORK/node_exporter.log" &
PIDS+=($!); NE_PID=$!
wait_http "http://127.0.0.1:$NE_PORT/metrics"
NE_IDLE=$(rss_mb "$NE_PID" VmRSS)
read -r ne50 nerps necpu _ < <(scrape node_exporter "http://127.0.0.1:$NE_PORT/metrics" "$NE_PID")
NE_HWM=$(rss_mb "$NE_PID" VmHWM)
for size in "${SIZES[@]}"; do
  d=$(dir_of "$size"); p=$(port)
  serve "$d" "$d/caretaker.toml" "$p"
  sleep 1
  idle=$(rss_mb "$SERVE_PID" VmRSS)
  read -r c50 crps ccpu cbad < <(scrape "caretaker-$size" "http://127.0.0.1:$p/metrics" "$SERVE_PID")
  [ "$cbad" = 0 ] || { echo "bench: caretaker answered $cbad non-2xx scrapes" >&2; exit 1; }
  record "scrape $size: median latency ms" "$c50" "$ne50" lower "< 1 ms"
  record "scrape $size: requests/s" "$crps" "$nerps" higher ">= 50x"
  record "scrape $size: server CPU ms per scrape" "$ccpu" "$necpu" lower "-"
  record "RSS $size after first collection, MB" "$idle" "$NE_IDLE" lower "< 30 MB idle"
  record "RSS $size peak (VmHWM), MB" "$(rss_mb "$SERVE_PID" VmHWM)" "$NE_HWM" lower "-"
  record "RSS $size anonymous (RssAnon), MB" "$(rss_mb "$SERVE_PID" RssAnon)" "$(rss_mb "$NE_PID" RssAnon)" lower "-"
  kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
done

# 3. Verified, compressed, checksummed backup against seed 001's script.
d=$(dir_of "${SIZES[-1]}")
sed 's/^retention = "30d"$/retention = "30d"\nverify = "full"/' "$d/caretaker.toml" > "$d/caretaker-full.toml"
grep -q 'verify = "full"' "$d/caretaker-full.toml"
read -r qw qc < <($M runs "$BACKUP_RUNS" "$BIN" run backup --config.file="$d/caretaker.toml")
rm -rf "$d"/backups/memory-*
read -r fw fc < <($M runs "$BACKUP_RUNS" "$BIN" run backup --config.file="$d/caretaker-full.toml")
rm -rf "$d"/backups/memory-*
read -r pw pc < <($M runs "$BACKUP_RUNS" "$ROOT/scripts/bench/seed_backup.sh" "$d/memory.db" "$WORK/seed-backups")
rm -rf "$WORK/seed-backups"
record "backup ${SIZES[-1]}, verify=quick: wall s" "$qw" "$pw" lower "<= 0.15"
record "backup ${SIZES[-1]}, verify=full: wall s" "$fw" "$pw" lower "<= 0.3"
record "backup ${SIZES[-1]}, verify=quick: CPU s" "$qc" "$pc" lower "-"
record "backup ${SIZES[-1]}, verify=full: CPU s" "$fc" "$pc" lower "-"

# 4. A writer's longest commit while the backup runs. The disk settles first
# (see settle_disk), the writer makes a few commits (its first ones open the
# database), then the backup starts; only commits that overlap its run count.
stall_ms() {
  python3 - "$d/memory.db" "$@" <<'PY'
import subprocess, sqlite3, sys, threading, time
db, cmd = sys.argv[1], sys.argv[2:]
commits, stop, warm = [], threading.Event(), threading.Event()
def write():
    conn = sqlite3.connect(db, timeout=30, isolation_level=None)
    n = 0
    while not stop.is_set():
        t = time.monotonic()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO metrics_log (metric_name, metric_value, timestamp) VALUES ('bench_writer', ?, datetime('now'))", (n,))
        conn.execute("COMMIT")
        commits.append((t, time.monotonic())); n += 1
        if n >= 20:
            warm.set()
        time.sleep(0.005)
    conn.execute("DELETE FROM metrics_log WHERE metric_name = 'bench_writer'")
w = threading.Thread(target=write); w.start()
warm.wait()
began = time.monotonic()
try:
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600, check=True)
    done = "finished"
except subprocess.TimeoutExpired:
    done = "timed out"
ended = time.monotonic()
stop.set(); w.join()
during = [e - s for s, e in commits if s < ended and e > began]
print(f"{max(during) * 1000:.2f} {done}")
PY
}
settle_disk
read -r cs cdone < <(stall_ms "$BIN" run backup --config.file="$d/caretaker.toml")
rm -rf "$d"/backups/memory-*
settle_disk
read -r ps pdone < <(stall_ms sqlite3 "$d/memory.db" ".backup '$WORK/stall.backup'")
rm -f "$WORK/stall.backup"
record "writer's longest commit during backup, ms (caretaker $cdone, sqlite3 $pdone)" "$cs" "$ps" lower "< 50 ms"

# 4b. Incremental snapshots (docs/incremental.md) of the same database: a full
# backup starts a chain, then DELTAS times a writer rewrites a run of patterns
# (about 1% of the pages) and `backups snapshot` takes the delta, as the
# snapshot loop does every interval. Beside them: step 3's full backup.
inc="$d/caretaker-incremental.toml" db="$d/memory.db"
rm -rf "$d"/backups/memory-*
"$BIN" run backup --config.file="$inc" >/dev/null 2>&1
base=$(ls "$d"/backups/memory-*.db.zst) bsize=$(stat -c %s "$d"/backups/memory-*.db.zst)
pages=$(sqlite3 "$db" "PRAGMA page_count")
rows=$(sqlite3 "$db" "SELECT max(rowid) FROM patterns")
ppages=$(sqlite3 "$db" "SELECT count(*) FROM dbstat WHERE name = 'patterns'" 2>/dev/null || echo "$pages")
n=$(( rows * pages / 100 / (ppages > 0 ? ppages : 1) )); n=$(( n > 0 ? n : 1 ))
change() {
  sqlite3 "$db" "UPDATE patterns SET pattern_data = hex(randomblob(length(pattern_data) / 2)) WHERE rowid > $1 AND rowid <= $1 + $n"
}
walls=() cpus=() at=0
for _ in $(seq 1 "$DELTAS"); do
  change "$at"; at=$(( (at + n) % (rows > n ? rows - n : 1) ))
  read -r w c < <($M runs 1 "$BIN" backups snapshot --config.file="$inc")
  walls+=("$w") cpus+=("$c")
done
read -r uw uc < <($M runs 1 "$BIN" backups snapshot --config.file="$inc")
sw=$(median "${walls[@]}") sc=$(median "${cpus[@]}")
read -r dbytes dpages < <(python3 - "$base.chain" <<'PY'
import json, pathlib, statistics, sys
links = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")) if p.stem.isdigit()]
print(int(statistics.median(l["delta_bytes"] for l in links)), int(statistics.median(l["changed_pages"] for l in links)))
PY
)
sleep 1
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
read -r rw _ < <($M runs 1 "$BIN" restore --config.file="$inc" --at="$now" --force)
read -r bw _ < <($M runs 1 "$BIN" restore --config.file="$inc" --backup="$base" --force)
rm -rf "$db".before-restore-*
change 0
settle_disk
read -r ss sdone < <(stall_ms "$BIN" backups snapshot --config.file="$inc")
rm -rf "$d"/backups/memory-*
record "snapshot ${SIZES[-1]}, ~1% of pages changed ($dpages of $pages): wall s (peer: full backup)" "$sw" "$qw" lower "-"
record "snapshot ${SIZES[-1]}, ~1% of pages changed: CPU s (peer: full backup)" "$sc" "$qc" lower "-"
record "snapshots every 1m: share of one core, %" "$(python3 -c "print(f'{$sc / 60 * 100:.2f}')")" - - "<= 2%"
record "snapshot ${SIZES[-1]}, nothing changed: CPU s" "$uc" - - "-"
record "delta, ~1% of pages changed: bytes (peer: full backup)" "$dbytes" "$bsize" lower "-"
record "restore --at $DELTAS deltas into a chain: wall s (peer: the full backup alone)" "$rw" "$bw" lower "<= 1.5x"
record "writer's longest commit during a snapshot, ms ($sdone)" "$ss" - - "< 50 ms"

# 5a. The disk as a writer that fsyncs every commit sees it, idle and with one
# and two cores spinning (wrk and the server keep them busy in step 5). No
# peer: on a virtual machine whose disk stalls while its cores are busy, this
# is the floor under step 5's p99 (caretaker fsyncs every accepted alert).
declare -a FSYNC_RATE FSYNC_P99
for busy in 0 1 2; do
  settle_disk
  read -r f50 f99 fslow fstall frate < <($M fsync "$WRK_SECONDS" "$WORK/fsync.tmp" "$busy")
  FSYNC_RATE[$busy]=$frate; FSYNC_P99[$busy]=$f99
  record "fsync of a 4 KiB overwrite, $busy spinning processes: fsyncs per s (one at a time)" "$frate" - - "report only"
  record "fsync of a 4 KiB overwrite, $busy spinning processes: median ms" "$f50" - - "report only"
  record "fsync of a 4 KiB overwrite, $busy spinning processes: p99 ms" "$f99" - - "report only"
  record "fsync of a 4 KiB overwrite, $busy spinning processes: fsyncs over 5 ms per s (median ms: $fstall)" "$fslow" - - "report only"
done

# 5. Alertmanager webhooks against adnanh/webhook checking a header token, with
# 4 and with 32 concurrent connections (an Alertmanager sends one request per
# group flush; a storm of groups, or several Alertmanagers, send many at once).
d=$(dir_of small); TOKEN=$(tr -d '\n' < "$d/token")
cat > "$WORK/hooks.json" <<JSON
[{"id": "alertmanager", "execute-command": "/bin/true",
  "trigger-rule": {"match": {"type": "value", "value": "Bearer $TOKEN",
                             "parameter": {"source": "header", "name": "Authorization"}}}}]
JSON
# Each server gets WH_RUNS runs of WRK_SECONDS, alternating with the peer;
# the rows are the medians (one burst of disk stalls must not decide a row).
for conns in 4 32; do
  for run in $(seq 1 "$WH_RUNS"); do
    p=$(port)
    settle_disk
    serve "$d" "$d/caretaker.toml" "$p"
    BENCH_TOKEN=$TOKEN wrk -t1 -c"$conns" -d"${WRK_SECONDS}s" --latency -s "$ROOT/scripts/bench/post.lua" \
      "http://127.0.0.1:$p" > "$WORK/wrk-hook-caretaker-c$conns-$run.txt"
    kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
    wp=$(port)
    webhook -hooks "$WORK/hooks.json" -ip 127.0.0.1 -port "$wp" > "$WORK/webhook.log" 2>&1 &
    PIDS+=($!); WH_PID=$!
    settle_disk
    for _ in $(seq 1 100); do curl -fsS -o /dev/null -X POST "http://127.0.0.1:$wp/hooks/alertmanager" -H "Authorization: Bearer $TOKEN" 2>/dev/null && break; sleep 0.1; done
    BENCH_TOKEN=$TOKEN BENCH_PATH=/hooks/alertmanager wrk -t1 -c"$conns" -d"${WRK_SECONDS}s" --latency -s "$ROOT/scripts/bench/post.lua" \
      "http://127.0.0.1:$wp" > "$WORK/wrk-hook-webhook-c$conns-$run.txt"
    kill "$WH_PID"; wait "$WH_PID" 2>/dev/null || true
  done
  read -r h50 h99 hrps hbad < <($M wrk "$WORK"/wrk-hook-caretaker-c"$conns"-*.txt)
  read -r w50 w99 wrps wbad < <($M wrk "$WORK"/wrk-hook-webhook-c"$conns"-*.txt)
  [ "$hbad" = 0 ] && [ "$wbad" = 0 ] || { echo "bench: webhook non-2xx: caretaker $hbad, webhook $wbad" >&2; exit 1; }
  # Every accepted alert is fsynced before its 202, so the disk's fsync under
  # the same load (2 spinning processes: wrk and the server fill both cores)
  # is the floor: intake is reported beside it, not against a fixed figure.
  if [ "$conns" = 4 ]; then target="report beside fsync"; else target=">= 5x"; fi
  record "webhook, $conns connections: requests/s" "$hrps" "$wrps" higher "$target"
  record "webhook, $conns connections: requests/s against the disk's fsyncs/s (2 spinning processes)" "$hrps" "${FSYNC_RATE[2]}" higher "report only"
  record "webhook, $conns connections: p99 latency ms" "$h99" "$w99" lower "report beside fsync"
  record "webhook, $conns connections: p99 latency ms against the disk's fsync p99 (2 spinning processes)" "$h99" "${FSYNC_P99[2]}" lower "report only"
  record "webhook, $conns connections: median latency ms" "$h50" "$w50" lower "-"
done

# 7. Condition to completed fix through Prometheus and Alertmanager (no peer).
"$ROOT/scripts/bench/remediation.sh" "$BIN" "$(dir_of small)" "$WORK/remediation" > "$WORK/remediation.txt"
record "backup folder emptied to backup job finished (Prometheus + Alertmanager), s" "$(cat "$WORK/remediation.txt")" - - "report only"

# 8. Offsite copies to an S3 server and restore drills (see the file).
d=$(dir_of "${SIZES[-1]}")
. "$ROOT/scripts/bench/offsite.sh"

echo >&2
$M table "$RESULTS" --check | tee "$WORK/results.md"
echo "bench ($MODE): every measurement produced a number; results in $WORK/results.md" >&2
