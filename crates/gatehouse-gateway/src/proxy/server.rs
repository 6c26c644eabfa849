//! The traffic listeners: worker threads each with its own `SO_REUSEPORT` listener, runtime and
//! upstream pool, and the limits every connection is held to (header size and count, time to
//! send headers, connections per worker), enforced before any request reaches a route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::upstream::Clients;
use super::Proxy;

/// What each client connection is held to.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// Largest request head (request line and headers) in bytes; past it, 431 and the
    /// connection closes. HTTP/2: the largest header list.
    pub max_header_bytes: usize,
    /// Most request headers; past it, 431.
    pub max_headers: usize,
    /// Time a client has to send a request's headers, counted from when the connection is
    /// ready for them (so also how long an idle keep-alive connection stays open); then the
    /// connection closes.
    pub header_timeout: Duration,
    /// Open connections per worker; past it, new connections wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 64 << 10,
            max_headers: 100,
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

/// hyper's smallest read buffer.
const MIN_BUF: usize = 8192;
/// hyper's own header count, kept on the stack; another count costs a heap allocation each.
const HYPER_MAX_HEADERS: usize = 100;

fn builder(limits: &ServeLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    let mut h1 = b.http1();
    h1.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // The read buffer holds a request head whole: one larger is 431.
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF));
    if limits.max_headers != HYPER_MAX_HEADERS {
        h1.max_headers(limits.max_headers);
    }
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    b
}

/// Serves the data plane on `listener` until `shutdown` turns true, then lets connections
/// finish their requests in flight.
pub async fn serve(
    proxy: Arc<Proxy>,
    listener: TcpListener,
    limits: ServeLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let clients = Arc::new(Clients::new(proxy.timeouts.connect));
    let builder = Arc::new(builder(&limits));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut last_warned: Option<Instant> = None;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection limit of this worker reached; new connections wait until one closes (--max-connections)"
                    );
                    last_warned = Some(Instant::now());
                }
                metrics::counter!("gatehouse_connection_limit_reached_total").increment(1);
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    _ = shutdown.wait_for(|stop| *stop) => break,
                }
            }
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let _ = stream.set_nodelay(true);
        let (proxy, clients) = (proxy.clone(), clients.clone());
        let client_ip = HeaderValue::from_str(&remote.ip().to_string())
            .unwrap_or(HeaderValue::from_static("unknown"));
        let service = service_fn(move |req| {
            let (proxy, clients, client_ip) = (proxy.clone(), clients.clone(), client_ip.clone());
            async move { Ok::<_, Infallible>(proxy.handle(&clients, req, &client_ip).await) }
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        let conn = graceful.watch(conn.into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after 10 s; closing them");
    }
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// The data plane's serving threads.
pub struct Workers {
    /// Where traffic is served.
    pub addr: SocketAddr,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Waits for every serving thread to finish (after shutdown was signalled).
    pub fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Serves on `addr` with `workers` threads, each a single-threaded runtime with its own
/// listener (`SO_REUSEPORT`, so the kernel spreads connections) and its own upstream pool: a
/// request never leaves the core that accepted it.
pub fn serve_workers(
    proxy: Arc<Proxy>,
    addr: SocketAddr,
    workers: usize,
    limits: ServeLimits,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Workers> {
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..workers.max(1) {
        listeners.push(reuseport_listener(addr)?);
    }
    let mut threads = Vec::with_capacity(listeners.len());
    for (i, std_listener) in listeners.into_iter().enumerate() {
        let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("gatehouse-proxy-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        match TcpListener::from_std(std_listener) {
                            Ok(listener) => serve(proxy, listener, limits, shutdown).await,
                            Err(e) => tracing::error!(error = %e, "traffic listener"),
                        }
                    })
                })?,
        );
    }
    Ok(Workers { addr, threads })
}
