//! The latest collection of every source, and its encoding on scrape.
//!
//! Background collectors `record` into the snapshot; `/metrics` holds the read
//! lock only long enough to encode. No query, walk or hash ever runs here, so a
//! scrape costs the same whatever the size of the databases. The encoded text
//! is kept until the next change ([`Snapshot::encoded`]): collections come
//! every few seconds, scrapes may come far more often (several Prometheus
//! servers, dashboards), and encoding was most of a scrape's CPU.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Histogram, Kind, Labels, MetricSet};

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

#[derive(Debug, Default)]
struct Entry {
    set: MetricSet,
    status: SourceStatus,
}

#[derive(Debug, Default)]
struct Inner {
    sources: BTreeMap<SourceKey, Entry>,
    fixed: BTreeMap<&'static str, MetricSet>,
    /// Figures published by actions rather than collectors (no health series).
    published: BTreeMap<SourceKey, MetricSet>,
}

/// Shared, lock-protected store of the latest metric sets.
#[derive(Debug, Default)]
pub struct Snapshot {
    inner: RwLock<Inner>,
    /// Changes with every write, under the write lock.
    generation: AtomicU64,
    /// The text of the last encoding and the generation it shows.
    encoded: Mutex<Option<(u64, Arc<str>)>>,
}

impl Snapshot {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        let guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        // Bumped while the lock is held: a reader that sees a generation under
        // the read lock sees the data of that generation.
        self.generation.fetch_add(1, Ordering::AcqRel);
        guard
    }

    /// The snapshot's families in the text format (without `# EOF`), encoded
    /// again only when something was recorded since the last call.
    pub fn encoded(self: &Arc<Self>) -> Result<Arc<str>, std::fmt::Error> {
        let current = {
            let _inner = self.read();
            self.generation.load(Ordering::Acquire)
        };
        let mut cache = self.encoded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((generation, text)) = cache.as_ref() {
            if *generation == current {
                return Ok(text.clone());
            }
        }
        let seen = Arc::new(AtomicU64::new(0));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector {
            snapshot: self.clone(),
            seen: seen.clone(),
        }));
        let mut text = String::with_capacity(cache.as_ref().map_or(16 * 1024, |(_, t)| t.len()));
        prometheus_client::encoding::text::encode_registry(&mut text, &registry)?;
        let text: Arc<str> = text.into();
        *cache = Some((seen.load(Ordering::Acquire), text.clone()));
        Ok(text)
    }

    /// Stores the outcome of one collection. A failure drops the source's old
    /// figures (stale numbers would look current) but keeps its history.
    pub fn record(
        &self,
        key: SourceKey,
        result: Option<MetricSet>,
        duration: Duration,
        now: SystemTime,
    ) {
        let mut inner = self.write();
        let entry = inner.sources.entry(key).or_default();
        entry.status.runs += 1;
        entry.status.duration = duration;
        entry.status.ok = result.is_some();
        if result.is_some() {
            entry.status.last_success = Some(now);
        }
        entry.set = result.unwrap_or_default();
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
            Some(_) => inner.sources.get(&key).map(|e| &e.set),
            None => inner.published.get(&key),
        }
        .and_then(|set| set.value(stamp, &[]));
        if shown.is_some_and(|shown| shown >= offered) {
            return false;
        }
        match run {
            Some((duration, at)) => {
                let entry = inner.sources.entry(key).or_default();
                entry.status.runs += 1;
                entry.status.duration = duration;
                entry.status.ok = true;
                entry.status.last_success = Some(at);
                entry.set = set;
            }
            None => {
                inner.published.insert(key, set);
            }
        }
        true
    }

    /// Replaces a set that belongs to no collector (build info, config state).
    pub fn set_fixed(&self, name: &'static str, set: MetricSet) {
        self.write().fixed.insert(name, set);
    }

    /// Replaces figures an action published (no collector health attached).
    pub fn publish(&self, key: SourceKey, set: MetricSet) {
        self.write().published.insert(key, set);
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

    /// True once every given source has been collected at least once.
    pub fn collected_once(&self, keys: &[SourceKey]) -> bool {
        let inner = self.read();
        keys.iter()
            .all(|k| inner.sources.get(k).is_some_and(|e| e.status.runs > 0))
    }

    fn health(inner: &Inner) -> MetricSet {
        let mut set = MetricSet::new();
        for (key, entry) in &inner.sources {
            let mut labels: Labels = vec![("collector", key.collector.to_string())];
            if let Some(db) = &key.database {
                labels.push(("database", db.clone()));
            }
            let s = &entry.status;
            set.gauge(
                "caretaker_collector_success",
                "1 if the collector's last run succeeded, 0 if it failed",
                labels.clone(),
                if s.ok { 1.0 } else { 0.0 },
            );
            set.gauge(
                "caretaker_collector_duration_seconds",
                "How long the collector's last run took",
                labels.clone(),
                s.duration.as_secs_f64(),
            );
            if let Some(t) = s.last_success {
                set.gauge(
                    "caretaker_collector_last_success_timestamp_seconds",
                    "When the collector last succeeded, as a Unix timestamp",
                    labels,
                    unix_seconds(t),
                );
            }
        }
        set
    }
}

/// Seconds since the Unix epoch as a float (0 for times before it).
pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn encode_value(
    metric: &mut MetricEncoder<'_>,
    kind: Kind,
    value: f64,
) -> Result<(), std::fmt::Error> {
    match kind {
        Kind::Gauge => metric.encode_gauge(&value),
        Kind::Counter => metric.encode_counter::<NoLabelSet, f64, f64>(&value, None),
    }
}

/// One family gathered from every source: help, type and samples.
type Merged<'a> = (&'a str, Kind, Vec<&'a (Labels, f64)>);

/// One histogram family gathered from every source: help and samples.
type MergedHistogram<'a> = (&'a str, Vec<&'a (Labels, Histogram)>);

/// Adapter that lets a registry encode the snapshot; `seen` receives the
/// generation it encoded.
#[derive(Debug)]
struct SnapshotCollector {
    snapshot: Arc<Snapshot>,
    seen: Arc<AtomicU64>,
}

impl prometheus_client::collector::Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let inner = self.snapshot.read();
        let generation = self.snapshot.generation.load(Ordering::Acquire);
        self.seen.store(generation, Ordering::Release);
        let health = Snapshot::health(&inner);
        // Merge every source's families by name so each family is written once.
        let mut merged: BTreeMap<&str, Merged<'_>> = BTreeMap::new();
        let sets = inner
            .fixed
            .values()
            .chain(inner.sources.values().map(|e| &e.set))
            .chain(inner.published.values())
            .chain(std::iter::once(&health));
        let mut histograms: BTreeMap<&str, MergedHistogram<'_>> = BTreeMap::new();
        for set in sets {
            for family in set.families() {
                let slot = merged
                    .entry(family.name)
                    .or_insert_with(|| (family.help, family.kind, Vec::new()));
                slot.2.extend(family.samples.iter());
            }
            for family in set.histograms() {
                let slot = histograms
                    .entry(family.name)
                    .or_insert_with(|| (family.help, Vec::new()));
                slot.1.extend(family.samples.iter());
            }
        }
        for (name, (help, samples)) in histograms {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (labels, h) in samples {
                family
                    .encode_family(labels)?
                    .encode_histogram::<NoLabelSet>(h.sum(), h.count(), h.buckets(), None)?;
            }
        }
        for (name, (help, kind, samples)) in merged {
            let metric_type = match kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
            };
            let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
            for (labels, value) in samples {
                // An empty label set is written as a bare name, not `name{}`.
                if labels.is_empty() {
                    encode_value(&mut family, kind, *value)?;
                } else {
                    encode_value(&mut family.encode_family(labels)?, kind, *value)?;
                }
            }
        }
        Ok(())
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

    #[test]
    fn encoded_text_is_reused_until_something_is_recorded() {
        let snapshot = Snapshot::new();
        record(&snapshot, 1.0);
        let first = snapshot.encoded().expect("encode");
        assert_eq!(value_in(&first, "caretaker_test_value"), Some(1.0));
        assert!(!first.contains("# EOF"), "the handler adds the end marker");
        let again = snapshot.encoded().expect("encode");
        assert!(Arc::ptr_eq(&first, &again), "nothing changed: same text");
        record(&snapshot, 2.0);
        let after = snapshot.encoded().expect("encode");
        assert_eq!(value_in(&after, "caretaker_test_value"), Some(2.0));
        snapshot.set_fixed("build", MetricSet::new());
        assert!(!Arc::ptr_eq(&after, &snapshot.encoded().expect("encode")));
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
            let text = snapshot.encoded().expect("encode");
            let v = value_in(&text, "caretaker_test_value").expect("value");
            assert!(v >= last, "values never go back: {v} after {last}");
            last = v;
        }
        writer.join().expect("writer");
        let text = snapshot.encoded().expect("encode");
        assert_eq!(value_in(&text, "caretaker_test_value"), Some(2000.0));
    }
}
