//! `eddy run --metrics-addr`: the Prometheus endpoint alone, on the same
//! HTTP stack as `eddy serve` (`GET /metrics`; anything else is a JSON
//! error), on a one-thread runtime of its own.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use warp::Filter;

use super::ServerError;
use super::error::{ApiError, reply};
use crate::exec::export::Exporter;

/// A running metrics endpoint; it serves until the process ends.
pub struct MetricsServer {
    addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` and serves `exporter` at `/metrics`.
    ///
    /// # Errors
    /// The address cannot be bound, or the runtime not started.
    pub fn start(addr: &str, exporter: Arc<Exporter>) -> Result<Self, ServerError> {
        let bind_err = |source: std::io::Error| ServerError::Metrics {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(bind_err)?;
        let metrics = warp::path("metrics")
            .and(warp::path::end())
            .and(warp::get())
            .map(move || {
                warp::reply::with_header(
                    exporter.render(),
                    "content-type",
                    "text/plain; version=0.0.4; charset=utf-8",
                )
            });
        let routes = metrics.recover(|_| async {
            Ok::<_, std::convert::Infallible>(reply(
                &ApiError::new(
                    warp::http::StatusCode::NOT_FOUND,
                    "only GET /metrics is served here",
                )
                .hint("eddy serve has the full API"),
            ))
        });
        std::thread::Builder::new()
            .name("eddy-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        eprintln!("eddy: the metrics socket could not be used");
                        return;
                    };
                    warp::serve(routes).incoming(listener).run().await;
                });
            })
            .map_err(bind_err)?;
        Ok(Self { addr: bound })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
