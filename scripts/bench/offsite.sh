# 8. Offsite copies (docs/offsite.md) of the largest database to moto's S3
# server on a loopback port (the one the tests use). Sourced by
# scripts/bench.sh (it uses record, port, wait_http, median, M, BIN, WORK,
# BACKUP_RUNS, SIZES and d, the largest database's folder, which it leaves
# without backups).
#
# - caretaker's backup with its age-encrypted multipart upload, against the
#   runbook way: the same local backup, then `rclone copyto` of its file to
#   the same server (Debian's rclone; no encryption). The upload alone is the
#   difference of caretaker's two runs, beside rclone's copyto alone.
# - a restore drill (restore into a scratch folder, integrity and foreign-key
#   checks, the manifest's comparison), locally and from the store, beside a
#   plain restore of the same backup.

# Run on its own, it only explains itself: scripts/bench.sh runs it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  usage() {
    echo "usage: scripts/bench.sh [--smoke]   (this file is sourced by it)"
    sed -n '1,/^[^#]/s/^# \{0,1\}//p' "$0"
  }
  case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    *) echo "offsite.sh: run it through scripts/bench.sh" >&2; usage >&2; exit 2 ;;
  esac
fi

mp=$(port)
moto_server -H 127.0.0.1 -p "$mp" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$mp/"
secret=bench-secret-$RANDOM
printf '[default]\naws_access_key_id = bench\naws_secret_access_key = %s\n' "$secret" > "$d/bench-aws-credentials"
# rclone's remote `moto:` from the environment alone. rclone 1.60 refuses to
# start when AWS_CA_BUNDLE is set (it cannot apply it), and needs none here.
RCLONE=(env -u AWS_CA_BUNDLE RCLONE_CONFIG=/nonexistent/rclone.conf RCLONE_CONFIG_MOTO_TYPE=s3
  RCLONE_CONFIG_MOTO_PROVIDER=Other RCLONE_CONFIG_MOTO_ENDPOINT="http://127.0.0.1:$mp"
  RCLONE_CONFIG_MOTO_REGION=us-east-1 RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE=true
  RCLONE_CONFIG_MOTO_ACCESS_KEY_ID=bench RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY="$secret" rclone -q)
"${RCLONE[@]}" mkdir moto:bench

# The demo's configuration (local backups only, see demo) with an S3 store.
off="$d/caretaker-offsite.toml"
python3 - "$d/caretaker.toml" "$off" "$mp" "$(age-keygen -y "$d/backup-identity.txt")" <<'PY'
import sys
src, dst, port, recipient = sys.argv[1:]
text = open(src).read()
section = f'''[database.backup.offsite]
url = "s3://bench/hosts/db1"
endpoint = "http://127.0.0.1:{port}"
region = "us-east-1"
allow_http = true
credentials_file = "bench-aws-credentials"
encrypt_to = ["{recipient}"]
decrypt_identity_file = "backup-identity.txt"
'''
assert "[database.prune]" in text and "[database.backup.offsite]" not in text
open(dst, "w").write(text.replace("[database.prune]", section + "[database.prune]", 1))
PY

walls=() cwalls=()
for _ in $(seq 1 "$BACKUP_RUNS"); do
  rm -rf "$d"/backups/memory-*
  read -r w _ < <($M runs 1 "$BIN" run backup --config.file="$d/caretaker.toml")
  cwalls+=("$w")
  rm -rf "$d"/backups/memory-*
  read -r w _ < <($M runs 1 "$BIN" run backup --config.file="$off")
  walls+=("$w")
done
file=$(ls "$d"/backups/memory-*.db.zst)
rwalls=()
for i in $(seq 1 "$BACKUP_RUNS"); do
  read -r w _ < <($M runs 1 "${RCLONE[@]}" copyto "$file" "moto:bench/rclone/copy-$i.db.zst")
  rwalls+=("$w")
done
ow=$(median "${walls[@]}") lw=$(median "${cwalls[@]}") rw=$(median "${rwalls[@]}")
mb=$(python3 -c "print(f'{$(stat -c %s "$file") / 1e6:.0f}')")
record "offsite ${SIZES[-1]} ($mb MB compressed): backup + encrypted upload, wall s (peer: backup + rclone copyto)" \
  "$ow" "$(python3 -c "print(f'{$lw + $rw:.4f}')")" lower "-"
record "offsite ${SIZES[-1]}: the upload alone, wall s (peer: rclone copyto of the same file)" \
  "$(python3 -c "print(f'{max($ow - $lw, 0):.4f}')")" "$rw" lower "-"

# Drills against plain restores of the same newest backup.
read -r dl _ < <($M runs "$BACKUP_RUNS" "$BIN" run restore_drill --config.file="$d/caretaker.toml")
read -r pl _ < <($M runs "$BACKUP_RUNS" "$BIN" restore --config.file="$d/caretaker.toml" --force)
drill=$("$BIN" run restore_drill --config.file="$off" 2>/dev/null)
read -r ds dok < <(python3 -c 'import json, sys; f = json.load(sys.stdin)["outcome"]["figures"]; print(format(f["offsite_seconds"], ".4f"), f["offsite_ok"])' <<< "$drill")
[ "$dok" = 1.0 ] || { echo "bench: the offsite drill failed: $drill" >&2; exit 1; }
read -r po _ < <($M runs 1 "$BIN" restore --config.file="$off" --from=offsite --force)
rm -rf "$d"/memory.db.before-restore-* "$d"/backups/memory-*
record "restore drill ${SIZES[-1]}, local: wall s (peer: plain restore)" "$dl" "$pl" lower "-"
record "restore drill ${SIZES[-1]}, offsite: s (peer: restore --from=offsite, wall)" "$ds" "$po" lower "-"
