#!/usr/bin/env bash
# The peer of `caretaker run backup`: seed 001's backup-neural-database.sh
# (sqlite3 .backup, PRAGMA integrity_check on the copy, gzip, sha256sum).
set -euo pipefail
usage() {
  echo "usage: scripts/bench/seed_backup.sh DB_PATH BACKUP_DIR"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "seed_backup.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac
if [ $# -ne 2 ]; then usage >&2; exit 2; fi
DB_PATH=$1
BACKUP_DIR=$2
mkdir -p "$BACKUP_DIR"
BACKUP_FILE="$BACKUP_DIR/memory.db.$(date +%Y%m%d-%H%M%S-%N).backup"
sqlite3 "$DB_PATH" ".backup '$BACKUP_FILE'"
if sqlite3 "$BACKUP_FILE" "PRAGMA integrity_check;" | grep -q "ok"; then
  gzip "$BACKUP_FILE"
  sha256sum "${BACKUP_FILE}.gz" > "${BACKUP_FILE}.gz.sha256"
else
  rm -f "$BACKUP_FILE"
  exit 1
fi
