//! The process's one Prometheus recorder. The `metrics` crate accepts a single global recorder
//! per process, so the platform and the gateway (both inside `gatehouse dev`) share this one and
//! each `/metrics` endpoint renders every series the process records.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process-wide recorder's handle; the first call installs the recorder.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Gatehouse installs no other recorder; this fails only when a host program embedding
        // Gatehouse installed its own first, and then the series are recorded there instead.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_caller_renders_the_same_series() {
        let first = super::handle();
        metrics::counter!("gatehouse_core_test_total").increment(1);
        let second = super::handle();
        assert!(std::ptr::eq(first, second));
        assert!(second.render().contains("gatehouse_core_test_total 1"));
    }
}
