//! The latest collection of every source, and its encoding on scrape.
//!
//! Background collectors `record` into the snapshot; `/metrics` holds the read
//! lock only long enough to merge the sources' text. No query, walk or hash
//! ever runs here, so a scrape costs the same whatever the size of the
//! databases. Each source is encoded when it is recorded (see [`super::encode`]),
//! and [`Snapshot::generation`] tells the web layer when its cached body is
//! stale: collections come every few seconds, scrapes may come far more often
//! (several Prometheus servers, dashboards).
//! It also keeps the last hour of each database's sizes ([`super::trend`]) for
//! the landing page, filled as the database collector's sets arrive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use super::encode::{merge, Fragment};
use super::health::health;
use super::trend::{SizePoint, SizeTrends};
use super::MetricSet;

/// Identifies one source: a collector, for one database or for the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey {
    pub collector: &'static str,
    pub database: Option<String>,
}

impl SourceKey {
    pub fn new(collector: &'static str, database: Option<&str>) -> Self {
        Self {
            collector,
            database: database.map(str::to_string),
        }
    }
}

/// How a source's last collections went.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceStatus {
    pub runs: u64,
    pub ok: bool,
    pub duration: Duration,
    pub last_success: Option<SystemTime>,
}

/// A set and its encoding, made together so they never disagree.
#[derive(Debug, Default)]
struct Part {
    set: Arc<MetricSet>,
    fragment: Fragment,
}

impl Part {
    fn new(set: MetricSet) -> Self {
        let set = Arc::new(set);
        let fragment = Fragment::encode(vec![set.clone()]);
        Self { set, fragment }
    }
}

#[derive(Debug, Default)]
struct Entry {
    set: Arc<MetricSet>,
    status: SourceStatus,
    /// The set and the health series of `status`, encoded.
    fragment: Fragment,
}

impl Entry {
    /// Stores `set` and encodes it with the health series; a `summary`
    /// database's source that succeeded has none (see [`health`]).
    fn update(&mut self, key: &SourceKey, set: MetricSet, summary: bool) {
        self.set = Arc::new(set);
        let health = if summary && self.status.ok {
            MetricSet::new()
        } else {
            health(key, &self.status)
        };
        self.fragment = Fragment::encode(vec![self.set.clone(), Arc::new(health)]);
    }
}

#[derive(Debug, Default)]
struct Inner {
    sources: BTreeMap<SourceKey, Entry>,
    fixed: BTreeMap<&'static str, Part>,
    /// Figures published by actions rather than collectors (no health series).
    published: BTreeMap<SourceKey, Part>,
    /// The last hour of sizes, for the landing page (never encoded).
    trends: SizeTrends,
    /// Databases at `detail = "summary"`: their sources' health series are
    /// published only while the source fails.
    summary: std::collections::HashSet<String>,
}

impl Inner {
    fn is_summary(&self, key: &SourceKey) -> bool {
        key.database
            .as_ref()
            .is_some_and(|db| self.summary.contains(db))
    }
}

/// Shared, lock-protected store of the latest metric sets.
#[derive(Debug, Default)]
pub struct Snapshot {
    inner: RwLock<Inner>,
    /// Changes with every write, under the write lock.
    generation: AtomicU64,
}

impl Snapshot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        let guard = self.write_unchanged();
        self.bump();
        guard
    }

    /// The write lock without a new generation: for a caller that bumps it
    /// (while holding the lock) only if what it writes changes the encoding.
    fn write_unchanged(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Called with the write lock held: a reader that sees a generation
    /// under the read lock sees the data of that generation.
    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Changes whenever anything is recorded: a body encoded at one
    /// generation is current while the generation stays the same.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Appends the snapshot's families in the OpenMetrics text format
    /// (without `# EOF`) to `out`; returns the generation it shows.
    pub fn encode_into(&self, out: &mut String) -> u64 {
        let inner = self.read();
        let generation = self.generation();
        let fragments = inner
            .fixed
            .values()
            .map(|p| &p.fragment)
            .chain(inner.sources.values().map(|e| &e.fragment))
            .chain(inner.published.values().map(|p| &p.fragment));
        merge(fragments, out);
        generation
    }

    /// Stores the outcome of one collection. A failure drops the source's old
    /// figures (stale numbers would look current) but keeps its history.
    ///
    /// A `summary` database's source that succeeds again with the same
    /// figures changes nothing `/metrics` shows (its health is not
    /// published while it succeeds): the generation stays, so scrapes keep
    /// the body they share. At 1,000 databases the database collectors'
    /// passes (one every 5 s each, nearly all on unchanged files) otherwise
    /// made every scrape build a new body.
    pub fn record(
        &self,
        key: SourceKey,
        result: Option<MetricSet>,
        duration: Duration,
        now: SystemTime,
    ) {
        let mut inner = self.write_unchanged();
        inner.trends.note(&key, result.as_ref(), now);
        let summary = inner.is_summary(&key);
        let entry = inner.sources.entry(key.clone()).or_default();
        let unchanged = summary
            && entry.status.ok
            && entry.status.runs > 0
            && result.as_ref().is_some_and(|set| *set == *entry.set);
        entry.status.runs += 1;
        entry.status.duration = duration;
        entry.status.ok = result.is_some();
        if result.is_some() {
            entry.status.last_success = Some(now);
        }
        if !unchanged {
            self.bump();
            entry.update(&key, result.unwrap_or_default(), summary);
        }
    }

    /// Stores a result computed elsewhere (by an action, maybe in another
    /// process) unless `key` already shows one at least as new: `stamp` names
    /// the family that holds each result's time. With `run` (its duration and
    /// end) it counts as a run of the collector `key` names; without, it is
    /// published beside the collectors. Returns whether it was stored.
    pub fn offer(
        &self,
        key: SourceKey,
        set: MetricSet,
        stamp: &str,
        run: Option<(Duration, SystemTime)>,
    ) -> bool {
        let Some(offered) = set.value(stamp, &[]) else {
            return false;
        };
        let mut inner = self.write();
        let shown = match run {
            Some(_) => inner.sources.get(&key).map(|e| &*e.set),
            None => inner.published.get(&key).map(|p| &*p.set),
        }
        .and_then(|set| set.value(stamp, &[]));
        if shown.is_some_and(|shown| shown >= offered) {
            return false;
        }
        match run {
            Some((duration, at)) => {
                let summary = inner.is_summary(&key);
                let entry = inner.sources.entry(key.clone()).or_default();
                entry.status.runs += 1;
                entry.status.duration = duration;
                entry.status.ok = true;
                entry.status.last_success = Some(at);
                entry.update(&key, set, summary);
            }
            None => {
                inner.published.insert(key, Part::new(set));
            }
        }
        true
    }

    /// Replaces a set that belongs to no collector (build info, config state).
    pub fn set_fixed(&self, name: &'static str, set: MetricSet) {
        let part = Part::new(set);
        self.write().fixed.insert(name, part);
    }

    /// Replaces figures an action published (no collector health attached).
    pub fn publish(&self, key: SourceKey, set: MetricSet) {
        let part = Part::new(set);
        self.write().published.insert(key, part);
    }

    /// Names the databases at `detail = "summary"`, whose collectors publish
    /// health series only while they fail; applies from each source's next
    /// collection.
    pub fn set_summary_databases(&self, names: impl IntoIterator<Item = String>) {
        self.write().summary = names.into_iter().collect();
    }

    /// Forgets the sources of databases that are no longer configured.
    pub fn retain_databases(&self, names: &[String]) {
        let keep = |key: &SourceKey| match &key.database {
            Some(name) => names.contains(name),
            None => true,
        };
        let mut inner = self.write();
        inner.sources.retain(|key, _| keep(key));
        inner.published.retain(|key, _| keep(key));
        inner.trends.retain(names);
    }

    /// Forgets the collected sources `keep` refuses (a collector no longer
    /// configured for a database, such as its last probe removed).
    pub fn retain_sources(&self, keep: impl Fn(&SourceKey) -> bool) {
        self.write().sources.retain(|key, _| keep(key));
    }

    pub fn status(&self, key: &SourceKey) -> Option<SourceStatus> {
        self.read().sources.get(key).map(|e| e.status.clone())
    }

    /// Every source with its status, in key order (for the landing page).
    pub fn statuses(&self) -> Vec<(SourceKey, SourceStatus)> {
        let inner = self.read();
        inner
            .sources
            .iter()
            .map(|(k, e)| (k.clone(), e.status.clone()))
            .collect()
    }

    /// The value of a sample of one source, for the landing page and readiness.
    pub fn value(&self, key: &SourceKey, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.read().sources.get(key)?.set.value(name, labels)
    }

    /// The last hour of `database`'s sizes, oldest first.
    pub fn size_trend(&self, database: &str) -> Vec<SizePoint> {
        self.read().trends.of(database)
    }

    /// True once every given source has been collected at least once.
    pub fn collected_once(&self, keys: &[SourceKey]) -> bool {
        let inner = self.read();
        keys.iter()
            .all(|k| inner.sources.get(k).is_some_and(|e| e.status.runs > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value_in(text: &str, name: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    fn record(snapshot: &Snapshot, value: f64) {
        let mut set = MetricSet::new();
        set.gauge("caretaker_test_value", "a test figure", vec![], value);
        let key = SourceKey::new("test", None);
        snapshot.record(key, Some(set), Duration::ZERO, SystemTime::now());
    }

    fn encoded(snapshot: &Snapshot) -> String {
        let mut text = String::new();
        snapshot.encode_into(&mut text);
        text
    }

    #[test]
    fn the_generation_changes_with_every_record_and_only_then() {
        let snapshot = Snapshot::new();
        record(&snapshot, 1.0);
        let first = snapshot.generation();
        let text = encoded(&snapshot);
        assert_eq!(value_in(&text, "caretaker_test_value"), Some(1.0));
        assert!(!text.contains("# EOF"), "the handler adds the end marker");
        assert_eq!(snapshot.generation(), first, "encoding changes nothing");
        record(&snapshot, 2.0);
        assert_ne!(snapshot.generation(), first);
        assert_eq!(
            value_in(&encoded(&snapshot), "caretaker_test_value"),
            Some(2.0)
        );
        let before = snapshot.generation();
        snapshot.set_fixed("build", MetricSet::new());
        assert_ne!(snapshot.generation(), before);
    }

    #[test]
    fn scrapes_racing_with_collections_end_on_the_last_value() {
        let snapshot = Snapshot::new();
        record(&snapshot, 0.0);
        let writer = {
            let snapshot = snapshot.clone();
            std::thread::spawn(move || {
                for v in 1..=2000 {
                    record(&snapshot, f64::from(v));
                }
            })
        };
        let mut last = 0.0;
        while !writer.is_finished() {
            let text = encoded(&snapshot);
            let v = value_in(&text, "caretaker_test_value").expect("value");
            assert!(v >= last, "values never go back: {v} after {last}");
            last = v;
        }
        writer.join().expect("writer");
        assert_eq!(
            value_in(&encoded(&snapshot), "caretaker_test_value"),
            Some(2000.0)
        );
    }
}
