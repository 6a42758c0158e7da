//! The value type every collector returns: named families of labelled samples.
//!
//! Collectors never touch the Prometheus registry; they describe what they saw
//! as data, which keeps them testable and lets the snapshot merge sources.

use super::histogram::{Histogram, HistogramFamily};

/// Label pairs of one sample. Keys are fixed by the code, values are bounded.
pub type Labels = Vec<(&'static str, String)>;

/// The OpenMetrics type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    Counter,
}

/// One metric family: a name, its help text and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Labels, f64)>,
}

/// The output of one collection: families in the order they were first added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet {
    families: Vec<Family>,
    histograms: Vec<HistogramFamily>,
}

impl MetricSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gauge sample to the family `name`, creating the family if needed.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, labels: Labels, value: f64) {
        self.push(name, help, Kind::Gauge, labels, value);
    }

    /// Adds a counter sample (`name` without the `_total` suffix).
    pub fn counter(&mut self, name: &'static str, help: &'static str, labels: Labels, value: f64) {
        self.push(name, help, Kind::Counter, labels, value);
    }

    /// Adds a histogram sample to the family `name`.
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        h: Histogram,
    ) {
        match self.histograms.iter_mut().find(|f| f.name == name) {
            Some(family) => family.samples.push((labels, h)),
            None => self.histograms.push(HistogramFamily {
                name,
                help,
                samples: vec![(labels, h)],
            }),
        }
    }

    /// Declares a family without samples, so its metadata shows even when empty.
    pub fn declare(&mut self, name: &'static str, help: &'static str, kind: Kind) {
        self.family_mut(name, help, kind);
    }

    fn push(&mut self, name: &'static str, help: &'static str, kind: Kind, labels: Labels, v: f64) {
        self.family_mut(name, help, kind).samples.push((labels, v));
    }

    fn family_mut(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Family {
        let index = match self.families.iter().position(|f| f.name == name) {
            Some(index) => index,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[index]
    }

    /// Puts `key=value` in front of every sample's labels (the `database` label).
    pub fn prefix_label(&mut self, key: &'static str, value: &str) {
        for family in &mut self.families {
            for (labels, _) in &mut family.samples {
                labels.insert(0, (key, value.to_string()));
            }
        }
        for family in &mut self.histograms {
            for (labels, _) in &mut family.samples {
                labels.insert(0, (key, value.to_string()));
            }
        }
    }

    /// Moves every family of `other` into this set.
    pub fn extend(&mut self, other: MetricSet) {
        for family in other.families {
            let target = self.family_mut(family.name, family.help, family.kind);
            target.samples.extend(family.samples);
        }
        for family in other.histograms {
            for (labels, h) in family.samples {
                self.histogram(family.name, family.help, labels, h);
            }
        }
    }

    pub fn families(&self) -> &[Family] {
        &self.families
    }

    pub fn histograms(&self) -> &[HistogramFamily] {
        &self.histograms
    }

    /// The value of the first sample of `name` whose labels include all of `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.families.iter().find(|f| f.name == name)?;
        family
            .samples
            .iter()
            .find(|(have, _)| {
                labels
                    .iter()
                    .all(|(k, v)| have.iter().any(|(hk, hv)| hk == k && hv == v))
            })
            .map(|(_, v)| *v)
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty() && self.histograms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_of_one_name_share_a_family_and_get_the_prefix() {
        let mut set = MetricSet::new();
        set.gauge("a", "help", vec![("table", "x".into())], 1.0);
        set.gauge("a", "help", vec![("table", "y".into())], 2.0);
        set.gauge("b", "help", vec![], 3.0);
        set.prefix_label("database", "memory");
        assert_eq!(set.families().len(), 2);
        assert_eq!(
            set.value("a", &[("table", "y"), ("database", "memory")]),
            Some(2.0)
        );
        assert_eq!(
            set.families()[1].samples[0].0,
            vec![("database", "memory".to_string())]
        );
    }
}
