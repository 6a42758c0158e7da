//! The body of `/metrics`, built once per change and served as shared bytes.
//!
//! A body is the responder's live counters (a registry whose changes the
//! responder counts, see [`crate::responder::metrics`]), the collectors'
//! snapshot and `# EOF`. While neither the count of changes to the counters
//! nor the snapshot's generation moves,
//! every scrape answers with a clone of the same [`Bytes`]: no encoding and
//! no copy, whoever asks (several Prometheus servers, dashboards). The text
//! format 0.0.4 is derived from the OpenMetrics body the first time a client
//! asks for it, and kept beside it. The server does not compress (no
//! compression layer), so there is no compressed body to keep.

use std::sync::Mutex;

use axum::body::Bytes;
use prometheus_client::encoding::text;
use prometheus_client::registry::Registry;

use super::negotiate;
use crate::metrics::Snapshot;

/// The formats `/metrics` negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Text,
}

/// The last body built and what it shows.
#[derive(Debug, Default)]
pub struct Exposition {
    cache: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    generation: u64,
    /// The count of changes to the registry that `openmetrics` shows.
    changes: u64,
    openmetrics: Bytes,
    text: Option<Bytes>,
}

impl Exposition {
    /// The body in `format`, built anew only if the registry's count of
    /// `changes` (read before it is encoded) or the snapshot moved since
    /// the last one.
    pub fn body(
        &self,
        snapshot: &Snapshot,
        registry: &Registry,
        changes: u64,
        format: Format,
    ) -> Result<Bytes, std::fmt::Error> {
        let generation = snapshot.generation();
        // Held while a body is built: a scrape that arrives meanwhile waits
        // for it and then shares it instead of building its own.
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let current = cache
            .as_ref()
            .is_some_and(|c| c.generation == generation && c.changes == changes);
        if !current {
            let previous = cache.as_ref().map_or(0, |c| c.openmetrics.len());
            let mut body = String::with_capacity(previous + 1024);
            text::encode_registry(&mut body, registry)?;
            let shown = snapshot.encode_into(&mut body);
            text::encode_eof(&mut body)?;
            *cache = Some(Cached {
                generation: shown,
                changes,
                openmetrics: Bytes::from(body),
                text: None,
            });
        }
        let Some(cached) = cache.as_mut() else {
            return Err(std::fmt::Error);
        };
        Ok(match format {
            Format::OpenMetrics => cached.openmetrics.clone(),
            Format::Text => {
                let openmetrics = &cached.openmetrics;
                cached
                    .text
                    .get_or_insert_with(|| {
                        let om = std::str::from_utf8(openmetrics).unwrap_or_default();
                        Bytes::from(negotiate::to_text_format(om))
                    })
                    .clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::metrics::{MetricSet, SourceKey};
    use prometheus_client::metrics::counter::Counter;

    fn record(snapshot: &Snapshot, value: f64) {
        let mut set = MetricSet::new();
        set.gauge("caretaker_test_value", "a test figure", vec![], value);
        let key = SourceKey::new("test", None);
        snapshot.record(key, Some(set), Duration::ZERO, SystemTime::now());
    }

    #[test]
    fn unchanged_bodies_are_shared_and_every_change_shows_at_the_next_scrape() {
        let snapshot = Snapshot::new();
        let mut registry = Registry::default();
        let hits = Counter::<u64>::default();
        registry.register("caretaker_test_hits", "Hits", hits.clone());
        let exposition = Exposition::default();
        record(&snapshot, 1.0);
        let changes = std::cell::Cell::new(0);
        let body = |format| {
            exposition
                .body(&snapshot, &registry, changes.get(), format)
                .expect("body")
        };
        let first = body(Format::OpenMetrics);
        let again = body(Format::OpenMetrics);
        assert_eq!(first, again);
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same bytes, not a copy");
        let om = std::str::from_utf8(&first).expect("utf-8");
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("caretaker_test_value 1\n"), "{om}");
        let text = body(Format::Text);
        assert_eq!(text.as_ptr(), body(Format::Text).as_ptr());
        assert!(!std::str::from_utf8(&text).expect("utf-8").contains("# EOF"));

        record(&snapshot, 2.0);
        let after = body(Format::OpenMetrics);
        assert!(std::str::from_utf8(&after)
            .expect("utf-8")
            .contains("caretaker_test_value 2\n"));
        let text = body(Format::Text);
        assert!(std::str::from_utf8(&text)
            .expect("utf-8")
            .contains("caretaker_test_value 2\n"));

        hits.inc();
        let stale = body(Format::OpenMetrics);
        assert!(
            !std::str::from_utf8(&stale)
                .expect("utf-8")
                .contains("caretaker_test_hits_total 1"),
            "an uncounted change is not looked for"
        );
        changes.set(1);
        let counted = body(Format::OpenMetrics);
        let counted = std::str::from_utf8(&counted).expect("utf-8");
        assert!(counted.contains("caretaker_test_hits_total 1"), "{counted}");
    }
}
