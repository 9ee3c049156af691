//! Registering metrics: the helpers every group uses, each registration also noted in the catalog the
//! manual's reference is checked against (docs/metrics.md).

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Registers `metric` in `r` and hands it back. Fails only on a bad or duplicate name, at start-up.
pub(crate) fn registered<M: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    metric: M,
) -> prometheus::Result<M> {
    if let Ok(mut catalog) = CATALOG.lock() {
        for d in metric.desc() {
            catalog.insert(
                format!("wsapi_{}", d.fq_name),
                (d.help.clone(), d.variable_labels.clone()),
            );
        }
    }
    r.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// Every metric the gateway registers (name → help, labels), for the reference in docs/metrics.md.
static CATALOG: std::sync::Mutex<std::collections::BTreeMap<String, (String, Vec<String>)>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// The metrics registered so far in this process (every one, once a `Metrics` and a `DbStats` exist), as
/// `(name, help, labels)`.
pub fn catalog() -> Vec<(String, String, Vec<String>)> {
    let catalog = CATALOG.lock().map(|c| c.clone()).unwrap_or_default();
    catalog
        .into_iter()
        .map(|(name, (help, labels))| (name, help, labels))
        .collect()
}

pub(crate) fn counter(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntCounter> {
    registered(r, IntCounter::new(name, help)?)
}

pub(crate) fn counter_vec(r: &Registry, name: &str, help: &str, label: &str) -> prometheus::Result<IntCounterVec> {
    counter_vec_by(r, name, help, &[label])
}

pub(crate) fn counter_vec_by(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    registered(r, IntCounterVec::new(Opts::new(name, help), labels)?)
}

pub(crate) fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    registered(r, IntGauge::new(name, help)?)
}

pub(crate) fn gauge_vec(r: &Registry, name: &str, help: &str, label: &str) -> prometheus::Result<IntGaugeVec> {
    registered(r, IntGaugeVec::new(Opts::new(name, help), &[label])?)
}

pub(crate) fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    buckets: Vec<f64>,
) -> prometheus::Result<HistogramVec> {
    registered(
        r,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), &[label])?,
    )
}

pub(crate) fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> prometheus::Result<Histogram> {
    registered(
        r,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?,
    )
}
