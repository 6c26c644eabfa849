//! TLS on the traffic listener: certificates chosen by SNI from their own DNS names (wildcards
//! included), a default one for other names, HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 and 1.3 only.
//! Certificates replaced on disk are picked up by a watcher without a restart: new handshakes
//! get them, connections already open keep theirs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificates come from.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// The default certificate chain and key (PEM), for names no other certificate has.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// A directory of `NAME.crt` + `NAME.key` pairs, each served for the names it holds.
    pub cert_dir: Option<PathBuf>,
}

/// Why certificates could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("no certificate: give --tls-cert and --tls-key, or --tls-cert-dir with NAME.crt and NAME.key pairs")]
    Nothing,
}

fn file_err(path: &Path, why: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

/// The certificates in use.
#[derive(Debug, Default)]
struct Certs {
    default: Option<Arc<CertifiedKey>>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// `*.example.com` under `example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl Certs {
    fn add(&mut self, key: Arc<CertifiedKey>, names: Vec<String>) {
        for n in names {
            match n.strip_prefix("*.") {
                Some(parent) => self.wildcard.entry(parent.to_owned()),
                None => self.exact.entry(n),
            }
            .or_insert_with(|| key.clone());
        }
    }

    fn find(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return Some(k.clone());
        }
        let parent = name.split_once('.')?.1;
        self.wildcard.get(parent).cloned()
    }
}

/// One chain and key, checked to belong together, and the DNS names of its certificate.
fn load_pair(cert: &Path, key: &Path) -> Result<(Arc<CertifiedKey>, Vec<String>), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e))?;
    let first = chain
        .first()
        .ok_or_else(|| file_err(cert, "holds no certificate"))?;
    let names: Vec<String> = webpki::EndEntityCert::try_from(first)
        .map_err(|e| file_err(cert, format!("not a usable certificate: {e}")))?
        .valid_dns_names()
        .map(str::to_ascii_lowercase)
        .collect();
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e))?;
    let signer = provider::sign::any_supported_type(&private).map_err(|e| file_err(key, e))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| file_err(key, format!("does not match {}: {e}", cert.display())))?;
    Ok((Arc::new(certified), names))
}

/// The `NAME.crt` + `NAME.key` pairs of `dir`, in name order.
fn pairs_in(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, TlsError> {
    let mut pairs = vec![];
    let entries = std::fs::read_dir(dir).map_err(|e| file_err(dir, e))?;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_some_and(|x| x == "crt") {
            let key = path.with_extension("key");
            if key.exists() {
                pairs.push((path, key));
            }
        }
    }
    pairs.sort();
    Ok(pairs)
}

/// Every file the certificates come from, with its modification time and length: what the
/// watcher compares.
fn stamp(files: &TlsFiles) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    let mut paths: Vec<PathBuf> = files.cert.iter().chain(&files.key).cloned().collect();
    if let Some(dir) = &files.cert_dir {
        for (c, k) in pairs_in(dir).unwrap_or_default() {
            paths.push(c);
            paths.push(k);
        }
    }
    paths
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map_or(0, |m| m.len());
            (p, modified, len)
        })
        .collect()
}

fn load(files: &TlsFiles) -> Result<Certs, TlsError> {
    let mut certs = Certs::default();
    if let (Some(c), Some(k)) = (&files.cert, &files.key) {
        let (key, names) = load_pair(c, k)?;
        certs.add(key.clone(), names);
        certs.default = Some(key);
    }
    if let Some(dir) = &files.cert_dir {
        for (c, k) in pairs_in(dir)? {
            let (key, names) = load_pair(&c, &k)?;
            certs.add(key, names);
        }
    }
    if certs.default.is_none() && certs.exact.is_empty() && certs.wildcard.is_empty() {
        return Err(TlsError::Nothing);
    }
    Ok(certs)
}

/// The certificates of the traffic listener, swapped whole when the files change.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    current: ArcSwap<Certs>,
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certs = self.current.load();
        hello
            .server_name()
            .and_then(|n| certs.find(n))
            .or_else(|| certs.default.clone())
    }
}

impl CertStore {
    /// Loads the certificates; an error names the file at fault.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let certs = load(&files)?;
        Ok(Arc::new(Self {
            files,
            current: ArcSwap::from_pointee(certs),
        }))
    }

    /// The server configuration: these certificates, TLS 1.2 and 1.3, h2 and http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .expect("ring supports TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// Reloads when the files change, every `every`, until the gateway stops. A set that does
    /// not load (say, a certificate written before its key) is logged and tried again; the
    /// certificates in use stay until one loads.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut seen = stamp(&self.files);
        // The last set that failed, so that a broken set is reported once, not every tick.
        let mut failed = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = stamp(&self.files);
            if now == seen || failed.as_ref() == Some(&now) {
                continue;
            }
            match load(&self.files) {
                Ok(certs) => {
                    self.current.store(Arc::new(certs));
                    seen = now;
                    failed = None;
                    tracing::info!("TLS certificates reloaded");
                    metrics::counter!("gatehouse_tls_reloads_total").increment(1);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "TLS certificates changed but do not load; keeping those in use until they do");
                    metrics::counter!("gatehouse_tls_reload_failures_total").increment(1);
                    failed = Some(now);
                }
            }
        }
    }
}
