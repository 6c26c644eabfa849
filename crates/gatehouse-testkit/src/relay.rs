//! A TCP relay between two of our processes that a test can sever (cutting every connection
//! through it, while both processes keep running) and heal, and that can refuse requests whose
//! bytes contain a marker (answering them 500), to make one call of an API fail.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running relay; stops when dropped.
pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    refuse: Arc<Mutex<Option<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Relays a free local port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cut_rx) = watch::channel(0u64);
        let refuse: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
        let (up2, refuse2) = (up.clone(), refuse.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (mut cut_rx, refuse) = (cut_rx.clone(), refuse2.clone());
                // Only cuts after this connection was accepted concern it.
                cut_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let upstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = cr.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                return None;
                            }
                            let marker = refuse.lock().unwrap().clone();
                            if let Some(m) = marker {
                                if buf[..n].windows(m.len()).any(|w| w == m.as_slice()) {
                                    return Some(());
                                }
                            }
                            if sw.write_all(&buf[..n]).await.is_err() {
                                return None;
                            }
                        }
                    };
                    let downstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = sr.read(&mut buf).await.unwrap_or(0);
                            if n == 0 || cw.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        refused = upstream => {
                            if refused.is_some() {
                                let body = "{\"error\":\"refused by the test relay\"}";
                                let resp = format!("HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                                let _ = cw.write_all(resp.as_bytes()).await;
                            }
                        }
                        _ = downstream => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            cut,
            refuse,
            task,
        }
    }

    /// Cuts every open connection and refuses new ones until `heal`.
    pub fn sever(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn heal(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Answers 500 to any request whose bytes contain `marker` (None: relay everything).
    pub fn refuse_requests_containing(&self, marker: Option<&str>) {
        *self.refuse.lock().unwrap() = marker.map(|m| m.as_bytes().to_vec());
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.sever();
        self.task.abort();
    }
}
