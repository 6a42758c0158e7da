//! Metric plumbing: collectors fill plain [`MetricSet`]s in the background, the
//! [`Snapshot`] keeps the latest set of every source, and a scrape only encodes it.
//!
//! Families from several sources (one per collector and database) are merged by
//! name when encoding, so each family appears exactly once in the output even
//! though every database contributes its own series.

mod encode;
mod family;
mod health;
mod histogram;
mod snapshot;
pub mod trend;

pub use family::{Family, Kind, Labels, MetricSet};
pub use health::unix_seconds;
pub use histogram::{Histogram, HistogramFamily};
pub use snapshot::{Snapshot, SourceKey, SourceStatus};
pub use trend::SizePoint;

/// The content type of the OpenMetrics text exposition format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
