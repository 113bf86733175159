//! Logs (tracing: human-readable by default, JSON by setting) and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the log subscriber. `RUST_LOG`, when set, beats `log_filter`.
pub fn init_logs(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// The process-wide metrics recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .expect("static buckets are valid")
                .set_buckets_for_metric(
                    Matcher::Full("chat_write_batch_size".into()),
                    &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 256.0],
                )
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// How late the runtime wakes a task that asked to sleep: a task wakes every
/// [`LAG_PROBE_EVERY`] and records how much later than asked it ran, in
/// `runtime_lag_seconds`. A worker held by long work (or starved of its core) shows here
/// as lag, whatever the work was; every task of the node waited as long.
pub fn spawn_lag_probe() {
    // The recorder first: a handle taken before it is installed records nothing.
    let _ = metrics_handle();
    tokio::spawn(async {
        let lag = metrics::histogram!("runtime_lag_seconds");
        loop {
            let asked = tokio::time::Instant::now() + LAG_PROBE_EVERY;
            tokio::time::sleep_until(asked).await;
            lag.record(asked.elapsed().as_secs_f64());
        }
    });
}

/// How often [`spawn_lag_probe`]'s task wakes.
pub const LAG_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(10);
