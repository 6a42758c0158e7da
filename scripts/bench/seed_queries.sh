#!/usr/bin/env bash
# The peer of `caretaker collect`: every database and pattern figure that seeds
# 000 and 001 compute, with their own SQL, one sqlite3 process per query as
# the runbooks run them.
set -euo pipefail
usage() {
  echo "usage: scripts/bench/seed_queries.sh DB"
  sed -n '2,/^[^#]/s/^# \{0,1\}//p' "$0"
}
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  -*) echo "seed_queries.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
esac
if [ $# -ne 1 ]; then usage >&2; exit 2; fi
DB=$1
q() { sqlite3 "$DB" "$1" >/dev/null; }
# 000: pattern library distribution by confidence tier
q "SELECT CASE WHEN confidence >= 0.9 THEN 'Excellent (0.9+)' WHEN confidence >= 0.8 THEN 'Very Good (0.8-0.9)'
  WHEN confidence >= 0.7 THEN 'Good (0.7-0.8)' WHEN confidence >= 0.6 THEN 'Fair (0.6-0.7)'
  WHEN confidence >= 0.5 THEN 'Moderate (0.5-0.6)' ELSE 'Low (<0.5)' END as quality_tier,
  COUNT(*), ROUND(AVG(usage_count), 2), ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM patterns), 2)
  FROM patterns GROUP BY quality_tier ORDER BY MIN(confidence) DESC;"
# 000: pattern quality per type
q "SELECT type, COUNT(*), ROUND(AVG(confidence), 3), ROUND(AVG(usage_count), 1),
  COUNT(CASE WHEN confidence > 0.8 THEN 1 END), COUNT(CASE WHEN usage_count > 10 THEN 1 END)
  FROM patterns GROUP BY type ORDER BY 3 DESC;"
# 000: duplicates
q "SELECT type, COUNT(*) as duplicate_count, AVG(confidence) FROM patterns GROUP BY type, pattern_data HAVING COUNT(*) > 1;"
# 000: cache metrics
q "SELECT 'Total Patterns', COUNT(*) FROM patterns
  UNION ALL SELECT 'Recently Used (1h)', COUNT(*) FROM patterns WHERE last_used > datetime('now', '-1 hour')
  UNION ALL SELECT 'Hot Cache (10+ uses)', COUNT(*) FROM patterns WHERE usage_count > 10
  UNION ALL SELECT 'Cold Cache (0-2 uses)', COUNT(*) FROM patterns WHERE usage_count <= 2;"
# 000: current performance metrics (size, totals, cache hit rate)
q "SELECT 'Database Size (MB)', ROUND((SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()) / 1024.0 / 1024.0, 2)
  UNION ALL SELECT 'Total Patterns', COUNT(*) FROM patterns
  UNION ALL SELECT 'High Confidence Patterns', COUNT(*) FROM patterns WHERE confidence > 0.8
  UNION ALL SELECT 'Current Cache Hit Rate', ROUND(1.0 * SUM(CASE WHEN last_used > datetime('now', '-1 hour') THEN usage_count ELSE 0 END) / NULLIF(SUM(usage_count), 0), 3) FROM patterns;"
# 000: monthly totals
q "SELECT COUNT(*) FROM patterns;"
q "SELECT COUNT(*) FROM patterns WHERE confidence > 0.8;"
# 000: daily metrics (as SELECTs: the seed inserts them into metrics_log)
q "SELECT COUNT(*) FROM patterns; SELECT AVG(confidence) FROM patterns;
  SELECT (SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()) / 1024.0 / 1024.0;"
# 001: prune candidates
q "SELECT COUNT(*) FROM patterns WHERE ((last_used < datetime('now', '-90 days') AND usage_count < 3)
  OR (confidence < 0.3 AND last_used IS NULL) OR (created_at < datetime('now', '-180 days') AND usage_count = 0));"
# 001: pattern consistency
q "SELECT COUNT(*) FROM patterns WHERE confidence < 0 OR confidence > 1 OR usage_count < 0 OR created_at IS NULL;"
# 001: orphaned embeddings
q "SELECT COUNT(*) FROM pattern_embeddings pe LEFT JOIN patterns p ON pe.pattern_id = p.id WHERE p.id IS NULL;"
# 001: expired entries
q "SELECT COUNT(*) FROM memory_entries WHERE expires_at IS NOT NULL AND datetime(expires_at) < datetime('now');"
# 000: agent reliability
q "SELECT strftime('%Y-%m', timestamp) as month, agent_name, AVG(truth_score), COUNT(*) FROM verification_history
  GROUP BY month, agent_name ORDER BY month DESC, 3 DESC LIMIT 50;"
