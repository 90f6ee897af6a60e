//! OpenTelemetry traces (`[telemetry]`, off unless `otlp_endpoint` is set): every `tracing` span
//! of `careid serve` (the `http` span of each request carries `request_id`, `method`, `path`
//! and `client_ip`; the spans inside it, their own fields) goes to an OpenTelemetry collector
//! over OTLP/HTTP (protobuf, `<otlp_endpoint>/v1/traces`), batched on a thread of its own, so a
//! slow or absent collector never holds up a request. Logs stay on stderr.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use opentelemetry_sdk::Resource;

use crate::config::TelemetryConfig;

/// The running trace pipeline.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Starts exporting to the configured collector; None when none is configured.
    pub fn start(c: &TelemetryConfig) -> anyhow::Result<Option<Traces>> {
        let Some(endpoint) = &c.otlp_endpoint else {
            return Ok(None);
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .with_timeout(std::time::Duration::from_secs(c.export_timeout_secs))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(c.service_name.clone())
                    .build(),
            )
            .build();
        Ok(Some(Traces { provider }))
    }

    pub fn tracer(&self) -> Tracer {
        self.provider.tracer("careid")
    }

    /// Sends what is buffered and stops (blocking: call it off the async runtime).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("careid: OpenTelemetry traces not all sent: {e}");
        }
    }
}
