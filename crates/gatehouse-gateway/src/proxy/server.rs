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
use tokio_rustls::TlsAcceptor;

use super::client_body::ClientBody;
use super::conn_io::Stream;
use super::upstream::Clients;
use super::{Proxy, Writer};
use http::Request;
use hyper::body::Incoming;
use hyper_util::server::graceful::Watcher;

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

/// The client end of a connection, as requests see it.
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address, for `X-Forwarded-For`.
    pub ip: HeaderValue,
    /// Whether the connection is TLS (`X-Forwarded-Proto: https`).
    pub https: bool,
}

/// What a client connection's task needs.
pub struct ConnContext {
    pub proxy: Arc<Proxy>,
    pub clients: Arc<Clients>,
    pub peer: Peer,
    pub limits: ServeLimits,
    pub builder: Arc<auto::Builder<TokioExecutor>>,
    pub shutdown: watch::Receiver<bool>,
}

/// Serves a connection with hyper (HTTP/2, TLS, and what the gateway's own HTTP/1.1 loop hands
/// over), watched by the graceful shutdown.
pub async fn serve_with_hyper<IO>(ctx: &ConnContext, io: IO, watcher: Watcher)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (proxy, clients, peer) = (ctx.proxy.clone(), ctx.clients.clone(), ctx.peer.clone());
    let service = service_fn(move |req: Request<Incoming>| {
        let (proxy, clients, peer) = (proxy.clone(), clients.clone(), peer.clone());
        async move {
            Ok::<_, Infallible>(
                proxy
                    .handle(
                        &clients,
                        req.map(ClientBody::from),
                        None,
                        &peer,
                        Writer::Hyper,
                    )
                    .await,
            )
        }
    });
    let conn = ctx
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    let _ = watcher.watch(conn.into_owned()).await;
}

/// Serves the data plane on `listener` (TLS when `tls` is given) until `shutdown` turns true,
/// then lets connections finish their requests in flight.
pub async fn serve(
    proxy: Arc<Proxy>,
    clients: Arc<Clients>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: ServeLimits,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builder = Arc::new(builder(&limits));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
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
        let ctx = ConnContext {
            proxy: proxy.clone(),
            clients: clients.clone(),
            peer: Peer {
                ip: HeaderValue::from_str(&remote.ip().to_string())
                    .unwrap_or(HeaderValue::from_static("unknown")),
                https: tls.is_some(),
            },
            limits,
            builder: builder.clone(),
            shutdown: shutdown.clone(),
        };
        let watcher = graceful.watcher();
        match &tls {
            None => {
                tokio::spawn(async move {
                    super::h1serve::serve(ctx, Stream::Left(stream), watcher).await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The handshake counts against the time to send headers.
                    let handshake =
                        tokio::time::timeout(limits.header_timeout, acceptor.accept(stream));
                    let stream = match handshake.await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            metrics::counter!("gatehouse_tls_handshake_failures_total")
                                .increment(1);
                            return;
                        }
                        Err(_) => return,
                    };
                    // HTTP/2 by ALPN goes to hyper; HTTP/1.1 to the gateway's own loop.
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        serve_with_hyper(&ctx, stream, watcher).await;
                    } else {
                        super::h1serve::serve(ctx, Stream::Right(Box::new(stream)), watcher).await;
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    // hyper's connections are told to finish; the gateway's own loop sees the same signal
    // between requests. Both hold a connection slot until they end.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let drained = async {
        graceful.shutdown().await;
        let _ = slots.acquire_many(all).await;
    };
    if tokio::time::timeout(Duration::from_secs(10), drained)
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
    /// Where plain HTTP is served.
    pub addr: Option<SocketAddr>,
    /// Where HTTPS is served.
    pub tls_addr: Option<SocketAddr>,
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

/// The listeners of every worker on `addr`: the first binds (a port 0 becomes a real one),
/// the others share its address.
fn listeners(
    addr: SocketAddr,
    workers: usize,
) -> std::io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = reuseport_listener(addr)?;
    let addr = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..workers {
        all.push(reuseport_listener(addr)?);
    }
    Ok((addr, all))
}

/// Where and how traffic is served.
pub struct Listen {
    /// Plain HTTP (`None`: off).
    pub plain: Option<SocketAddr>,
    /// HTTPS, with its TLS configuration.
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
}

/// Serves with `workers` threads, each a single-threaded runtime with its own listeners
/// (`SO_REUSEPORT`, so the kernel spreads connections), its own upstream pool and its own
/// connection cap: a request never leaves the core that accepted it.
pub fn serve_workers(
    proxy: Arc<Proxy>,
    listen: Listen,
    workers: usize,
    limits: ServeLimits,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<Workers> {
    let workers = workers.max(1);
    let mut plain = listen.plain.map(|a| listeners(a, workers)).transpose()?;
    let mut tls = match &listen.tls {
        Some((a, cfg)) => Some((listeners(*a, workers)?, TlsAcceptor::from(cfg.clone()))),
        None => None,
    };
    let addr = plain.as_ref().map(|(a, _)| *a);
    let tls_addr = tls.as_ref().map(|((a, _), _)| *a);
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers {
        let (proxy, shutdown) = (proxy.clone(), shutdown.clone());
        let plain_l = plain.as_mut().and_then(|(_, l)| l.pop());
        let tls_l = tls
            .as_mut()
            .and_then(|((_, l), acc)| l.pop().map(|l| (l, acc.clone())));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        threads.push(
            std::thread::Builder::new()
                .name(format!("gatehouse-proxy-{i}"))
                .spawn(move || {
                    rt.block_on(async move {
                        let clients = Arc::new(Clients::new(proxy.timeouts.connect));
                        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
                        let mut tasks = vec![];
                        for (l, acceptor) in plain_l
                            .map(|l| (l, None))
                            .into_iter()
                            .chain(tls_l.map(|(l, a)| (l, Some(a))))
                        {
                            match TcpListener::from_std(l) {
                                Ok(listener) => tasks.push(serve(
                                    proxy.clone(),
                                    clients.clone(),
                                    listener,
                                    acceptor,
                                    limits,
                                    slots.clone(),
                                    shutdown.clone(),
                                )),
                                Err(e) => tracing::error!(error = %e, "traffic listener"),
                            }
                        }
                        // Both listeners on this thread's runtime, which needs no `Send`.
                        futures::future::join_all(tasks).await;
                    })
                })?,
        );
    }
    Ok(Workers {
        addr,
        tls_addr,
        threads,
    })
}
