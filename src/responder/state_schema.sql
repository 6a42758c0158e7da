-- caretaker's own state: jobs (one per alert episode and action) and the audit trail.
CREATE TABLE IF NOT EXISTS jobs (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL UNIQUE,
  source TEXT NOT NULL,
  rule TEXT,
  action TEXT NOT NULL,
  database TEXT NOT NULL,
  alertname TEXT,
  fingerprint TEXT,
  starts_at TEXT,
  dry_run INTEGER NOT NULL DEFAULT 0,
  cooldown_seconds REAL NOT NULL DEFAULT 0,
  labels TEXT,
  status TEXT NOT NULL,
  reason TEXT,
  created_at REAL NOT NULL,
  started_at REAL,
  finished_at REAL,
  outcome TEXT,
  error TEXT,
  resolved_at REAL,
  pid INTEGER
);
CREATE INDEX IF NOT EXISTS jobs_attempts ON jobs(action, database, started_at);
CREATE INDEX IF NOT EXISTS jobs_episode ON jobs(fingerprint, starts_at);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY,
  at REAL NOT NULL,
  event TEXT NOT NULL,
  alertname TEXT,
  fingerprint TEXT,
  rule TEXT,
  action TEXT,
  database TEXT,
  job_id INTEGER,
  reason TEXT,
  detail TEXT
);
DROP INDEX IF EXISTS audit_at;
