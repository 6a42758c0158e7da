//! Histograms in a [`super::MetricSet`]: the one kind of figure whose sample is
//! more than a number. A collector keeps its own [`Histogram`] across runs
//! (observations accumulate) and copies it into each set it returns.

use super::Labels;

/// Observations counted per bucket (each bucket its own count, not
/// cumulative; the encoder sums them), with their sum and count. The last
/// bucket is always `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with the given finite upper bounds, in increasing order.
    pub fn new(bounds: &[f64]) -> Self {
        let buckets = bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .map(|b| (b, 0))
            .collect();
        Self {
            buckets,
            sum: 0.0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        if let Some(bucket) = self.buckets.iter_mut().find(|(le, _)| value <= *le) {
            bucket.1 += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    pub fn buckets(&self) -> &[(f64, u64)] {
        &self.buckets
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }
}

/// One histogram family: a name (without `_bucket`, `_sum`, `_count`), its
/// help text and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Labels, Histogram)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_observation_lands_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 7.0] {
            h.observe(v);
        }
        assert_eq!(h.buckets(), &[(0.1, 2), (1.0, 1), (f64::INFINITY, 1)]);
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 7.65).abs() < 1e-9);
    }
}
