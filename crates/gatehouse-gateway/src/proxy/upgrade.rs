//! Protocol upgrades through the gateway (WebSocket): the request's `Upgrade` goes upstream
//! after the policies let it through, and when the upstream switches protocols (101) the
//! gateway joins the client's connection and the upstream's and copies bytes both ways until
//! either side closes.

use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// An upgrade a client asked for.
pub struct Upgrade {
    protocol: HeaderValue,
    client: OnUpgrade,
}

impl Upgrade {
    /// The upgrade `parts` asks for (`Connection: upgrade` with `Upgrade`), taken before its
    /// hop-by-hop headers are removed.
    pub fn take(parts: &mut Parts) -> Option<Self> {
        let asks = parts
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
        if !asks {
            return None;
        }
        let protocol = parts.headers.get(header::UPGRADE)?.clone();
        let client = parts.extensions.remove::<OnUpgrade>()?;
        Some(Self { protocol, client })
    }

    /// Asks the upstream for the same upgrade.
    pub fn restore(&self, headers: &mut HeaderMap) {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, self.protocol.clone());
    }

    /// When the upstream switched protocols: keeps the response's upgrade headers (after the
    /// hop-by-hop ones were removed) and tunnels the two connections once both are upgraded.
    pub fn finish<B>(self, res: &mut Response<B>, artifact: &str) {
        if res.status() != StatusCode::SWITCHING_PROTOCOLS {
            return;
        }
        let protocol = res.headers().get(header::UPGRADE).cloned();
        let upstream = hyper::upgrade::on(&mut *res);
        crate::proxy::strip_hop_by_hop(res.headers_mut());
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        res.headers_mut()
            .insert(header::UPGRADE, protocol.unwrap_or(self.protocol));
        let artifact = artifact.to_owned();
        tokio::spawn(async move {
            let (client, upstream) = match tokio::try_join!(self.client, upstream) {
                Ok(both) => both,
                Err(e) => {
                    tracing::debug!(%artifact, error = %e, "an upgrade did not complete");
                    return;
                }
            };
            let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%artifact, error = %e, "an upgraded connection ended");
            }
        });
    }
}
