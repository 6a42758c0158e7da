//! Encoding the snapshot: each source is encoded once, when it is recorded,
//! into a [`Fragment`]; a scrape only merges the fragments by family name.
//!
//! Why: at 1,000 databases the snapshot changes about 200 times a second
//! (every collector pass records its duration), so a cache of the whole
//! encoding was stale at nearly every scrape, and encoding 20 MB of series
//! anew took about 500 ms. A pass re-encodes only its own source (tens of
//! lines); merging is copying text.
//!
//! The text is written by prometheus-client (a [`Collector`] over the
//! source's sets), so escaping and the OpenMetrics layout stay its own; the
//! fragment only remembers where each family's metadata and samples lie.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::{Kind, MetricSet};

/// One source's families as OpenMetrics text (no `# EOF`).
#[derive(Debug, Default)]
pub(super) struct Fragment {
    text: String,
    families: Vec<FamilyText>,
}

/// Where one family lies in a fragment's text.
#[derive(Debug)]
struct FamilyText {
    name: Range<usize>,
    /// `# HELP`, `# TYPE` and `# UNIT` lines.
    metadata: Range<usize>,
    samples: Range<usize>,
}

impl Fragment {
    /// Encodes `sets` (a source's figures and its health series).
    pub(super) fn encode(sets: Vec<Arc<MetricSet>>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SetsCollector(sets)));
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would leave the
        // source out of the scrape rather than fail it.
        if prometheus_client::encoding::text::encode_registry(&mut text, &registry).is_err() {
            return Self::default();
        }
        let families = split(&text);
        Self { text, families }
    }

    fn families(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.families.iter().map(|f| {
            (
                &self.text[f.name.clone()],
                &self.text[f.metadata.clone()],
                &self.text[f.samples.clone()],
            )
        })
    }
}

/// Finds each family's metadata and samples: a family starts at a `#` line
/// that follows samples or names another family.
fn split(text: &str) -> Vec<FamilyText> {
    let mut families: Vec<FamilyText> = Vec::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let start = pos;
        pos += line.len();
        let Some(rest) = line.strip_prefix("# ") else {
            if let Some(family) = families.last_mut() {
                family.samples.end = pos;
            }
            continue;
        };
        let name_start = start + 2 + rest.find(' ').map_or(0, |i| i + 1);
        let name_len = text[name_start..pos]
            .find([' ', '\n'])
            .unwrap_or(pos - name_start);
        let name = name_start..name_start + name_len;
        match families.last_mut() {
            Some(family)
                if family.samples.is_empty() && text[family.name.clone()] == text[name.clone()] =>
            {
                family.metadata.end = pos;
                family.samples = pos..pos;
            }
            _ => families.push(FamilyText {
                name,
                metadata: start..pos,
                samples: pos..pos,
            }),
        }
    }
    families
}

/// Writes the fragments' families, each once, in name order: the metadata of
/// the first fragment that has the family, then the samples of every one.
pub(super) fn merge<'a>(fragments: impl Iterator<Item = &'a Fragment>, out: &mut String) {
    let mut merged: BTreeMap<&str, (&str, Vec<&str>)> = BTreeMap::new();
    let mut len = 0;
    for fragment in fragments {
        len += fragment.text.len();
        for (name, metadata, samples) in fragment.families() {
            merged
                .entry(name)
                .or_insert_with(|| (metadata, Vec::new()))
                .1
                .push(samples);
        }
    }
    out.reserve(len);
    for (metadata, samples) in merged.values() {
        out.push_str(metadata);
        for s in samples {
            out.push_str(s);
        }
    }
}

/// Writes one value; a whole number within f64's exact integers is written
/// without a fraction (`0`, `4096`, as Prometheus's own clients do): most of
/// caretaker's values are counts and sizes, and at 1,000 databases the `.0`
/// of each was about 90 KB of `/metrics`.
fn encode_value(
    metric: &mut MetricEncoder<'_>,
    kind: Kind,
    value: f64,
) -> Result<(), std::fmt::Error> {
    /// 2^53: every whole number up to it is exact in an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let whole = value.fract() == 0.0 && value.abs() <= EXACT;
    match kind {
        Kind::Gauge if whole => metric.encode_gauge(&(value as i64)),
        Kind::Gauge => metric.encode_gauge(&value),
        Kind::Counter if whole && value >= 0.0 => {
            metric.encode_counter::<NoLabelSet, u64, f64>(&(value as u64), None)
        }
        Kind::Counter => metric.encode_counter::<NoLabelSet, f64, f64>(&value, None),
    }
}

/// Lets a registry encode one source's sets.
#[derive(Debug)]
struct SetsCollector(Vec<Arc<MetricSet>>);

impl Collector for SetsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for set in &self.0 {
            for f in set.histograms() {
                let mut family =
                    encoder.encode_descriptor(f.name, f.help, None, MetricType::Histogram)?;
                for (labels, h) in &f.samples {
                    family
                        .encode_family(labels)?
                        .encode_histogram::<NoLabelSet>(h.sum(), h.count(), h.buckets(), None)?;
                }
            }
            for f in set.families() {
                let metric_type = match f.kind {
                    Kind::Gauge => MetricType::Gauge,
                    Kind::Counter => MetricType::Counter,
                };
                let mut family = encoder.encode_descriptor(f.name, f.help, None, metric_type)?;
                for (labels, value) in &f.samples {
                    // An empty label set is written as a bare name, not `name{}`.
                    if labels.is_empty() {
                        encode_value(&mut family, f.kind, *value)?;
                    } else {
                        encode_value(&mut family.encode_family(labels)?, f.kind, *value)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Histogram;

    fn set(database: &str, value: f64) -> Arc<MetricSet> {
        let mut set = MetricSet::new();
        set.gauge(
            "b_size",
            "Size \"quoted\"",
            vec![("table", "t".into())],
            value,
        );
        set.counter("a_runs", "Runs", vec![], value);
        set.declare("c_empty", "Declared only", Kind::Gauge);
        let mut h = Histogram::new(&[1.0]);
        h.observe(value);
        set.histogram("d_seconds", "Seconds", vec![], h);
        set.prefix_label("database", database);
        Arc::new(set)
    }

    #[test]
    fn whole_numbers_are_written_without_a_fraction_and_the_rest_as_they_are() {
        let cases = [
            (0.0, "0"),
            (4096.0, "4096"),
            (-3.0, "-3"),
            (0.5, "0.5"),
            (1796279739.25, "1796279739.25"),
            (1e300, "1e300"),
            (f64::NAN, "NaN"),
        ];
        for (value, text) in cases {
            let mut set = MetricSet::new();
            set.gauge("g", "G", vec![], value);
            set.counter("c", "C", vec![], value.abs());
            let mut out = String::new();
            merge(
                [&Fragment::encode(vec![Arc::new(set)])].into_iter(),
                &mut out,
            );
            assert!(out.contains(&format!("\ng {text}\n")), "{value}: {out}");
            let counter = text.trim_start_matches('-');
            assert!(
                out.contains(&format!("\nc_total {counter}\n")),
                "{value}: {out}"
            );
        }
    }

    #[test]
    fn merged_fragments_name_each_family_once_with_every_source_s_samples() {
        let one = Fragment::encode(vec![set("one", 1.0)]);
        let two = Fragment::encode(vec![set("two", 2.0)]);
        let mut out = String::new();
        merge([&one, &two].into_iter(), &mut out);
        for name in ["a_runs", "b_size", "c_empty", "d_seconds"] {
            let types = out
                .lines()
                .filter(|l| l.starts_with(&format!("# TYPE {name} ")))
                .count();
            assert_eq!(types, 1, "{name} once in:\n{out}");
        }
        let b: Vec<&str> = out.lines().filter(|l| l.starts_with("b_size{")).collect();
        assert_eq!(b.len(), 2, "{out}");
        assert!(
            b[0].contains("\"one\"") && b[1].contains("\"two\""),
            "{b:?}"
        );
        // Samples follow their own family's metadata.
        let a_type = out.find("# TYPE a_runs").expect("a_runs");
        let a_sample = out.find("a_runs_total{database=\"two\"}").expect("sample");
        let b_type = out.find("# TYPE b_size").expect("b_size");
        assert!(a_type < a_sample && a_sample < b_type, "{out}");
        assert!(
            out.contains("d_seconds_bucket{le=\"+Inf\",database=\"two\"} 1"),
            "{out}"
        );
    }

    #[test]
    fn a_fragment_alone_is_what_the_registry_writes() {
        let sets = vec![set("one", 1.0)];
        let fragment = Fragment::encode(sets.clone());
        let mut merged = String::new();
        merge(std::iter::once(&fragment), &mut merged);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SetsCollector(sets)));
        let mut direct = String::new();
        prometheus_client::encoding::text::encode_registry(&mut direct, &registry).expect("encode");
        let sorted = |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_string).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&merged), sorted(&direct));
    }
}
