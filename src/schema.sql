-- The agent-memory database schema (`.swarm/memory.db`), verbatim from the database
-- operations runbook apart from IF NOT EXISTS. caretaker reads databases of this shape, and
-- `caretaker demo` and the benchmarks create theirs from it.

-- Core tables
CREATE TABLE IF NOT EXISTS patterns (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  pattern_data TEXT NOT NULL,
  confidence REAL NOT NULL DEFAULT 0.5,
  usage_count INTEGER NOT NULL DEFAULT 0,
  created_at TEXT NOT NULL,
  last_used TEXT,
  category TEXT
);

CREATE TABLE IF NOT EXISTS pattern_embeddings (
  pattern_id TEXT PRIMARY KEY,
  embedding BLOB NOT NULL,
  dimension INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  FOREIGN KEY (pattern_id) REFERENCES patterns(id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS task_trajectories (
  id TEXT PRIMARY KEY,
  task_type TEXT NOT NULL,
  execution_data TEXT NOT NULL,
  outcome TEXT NOT NULL,
  execution_time_ms INTEGER,
  created_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS verification_history (
  id TEXT PRIMARY KEY,
  agent_name TEXT NOT NULL,
  task_id TEXT NOT NULL,
  truth_score REAL NOT NULL,
  verification_status TEXT NOT NULL,
  details TEXT,
  timestamp TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS memory_entries (
  namespace TEXT NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  ttl INTEGER,
  created_at TEXT NOT NULL,
  expires_at TEXT,
  PRIMARY KEY (namespace, key)
);

CREATE TABLE IF NOT EXISTS metrics_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  metric_name TEXT NOT NULL,
  metric_value REAL NOT NULL,
  timestamp TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS migrations_applied (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  filename TEXT NOT NULL UNIQUE,
  applied_at TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'success'
);

-- Indexes for performance
CREATE INDEX IF NOT EXISTS idx_patterns_confidence ON patterns(confidence DESC);
CREATE INDEX IF NOT EXISTS idx_patterns_type ON patterns(type);
CREATE INDEX IF NOT EXISTS idx_patterns_category ON patterns(category, confidence DESC);
CREATE INDEX IF NOT EXISTS idx_patterns_last_used ON patterns(last_used DESC);
CREATE INDEX IF NOT EXISTS idx_task_trajectories_created ON task_trajectories(created_at DESC);
CREATE INDEX IF NOT EXISTS idx_verification_history_agent ON verification_history(agent_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS idx_memory_entries_expires ON memory_entries(expires_at);
