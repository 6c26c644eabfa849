//! The upstream of a REST API (`upstream.main`, `upstream.sandbox`): one `url`, or several
//! `urls` the gateway balances per request by weight, with an optional active health check.

use serde::{Deserialize, Serialize};

use super::rules::validate_url;
use crate::policy::Window;
use crate::validate::FieldError;

/// Largest weight of one URL.
pub const MAX_WEIGHT: u32 = 100;
/// Most URLs in one upstream.
pub const MAX_URLS: usize = 64;

/// One upstream of a REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestEndpoint {
    /// The one URL (or give `urls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Several URLs, each a string or `{url, weight}` (weight 1 to 100, default 1), balanced
    /// per request by weight; one that fails to connect or times out is left out for a while.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 64)]
    pub urls: Vec<WeightedUrl>,
    /// Checks each URL actively; one that fails is left out until it passes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// How `https://` URLs are verified and what the gateway presents to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<Box<EndpointTls>>,
}

/// TLS to an upstream: the certificate authority its certificates are checked against (instead
/// of the system's roots) and a client certificate for upstreams that ask for one (mTLS). All
/// PEM. `clientKey` is a credential: the control plane seals it at rest and never returns it
/// (reads show `clientKeySet: true`); a replace without it keeps the stored one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointTls {
    /// One or more CA certificates (PEM); the upstream's chain must lead to one of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// The client certificate chain (PEM), leaf first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

impl EndpointTls {
    /// The certificates parse; a key comes with a certificate. A certificate without its key is
    /// accepted here (a replace may leave the stored key in place); the control plane and the
    /// gateway refuse one that ends up without a key. The key itself is checked by
    /// [`EndpointTls::validate_key`] where it comes in: stored, it is sealed.
    fn validate(&self, field: &str) -> Result<(), FieldError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::CertificateDer;
        let certs = |name: &str, pem: &str| -> Result<(), FieldError> {
            let n = CertificateDer::pem_slice_iter(pem.as_bytes())
                .map(|c| c.map(|_| ()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    FieldError::new(
                        format!("{field}.{name}"),
                        format!("is not PEM certificates: {e}"),
                    )
                })?
                .len();
            if n == 0 {
                return Err(FieldError::new(
                    format!("{field}.{name}"),
                    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                ));
            }
            Ok(())
        };
        if let Some(ca) = &self.ca {
            certs("ca", ca)?;
        }
        if let Some(cert) = &self.client_cert {
            certs("clientCert", cert)?;
        }
        if self.client_key.is_some() && self.client_cert.is_none() {
            return Err(FieldError::new(
                format!("{field}.clientKey"),
                "needs clientCert, the certificate it belongs to",
            ));
        }
        Ok(())
    }

    /// The client key, as written by a user, is a PEM private key.
    pub fn validate_key(&self, field: &str) -> Result<(), FieldError> {
        use rustls_pki_types::pem::PemObject;
        if let Some(key) = &self.client_key {
            rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
                FieldError::new(
                    format!("{field}.clientKey"),
                    format!("is not a PEM private key: {e}"),
                )
            })?;
        }
        Ok(())
    }
}

/// A URL of an upstream with its weight, as written: `"http://a"` or `{url, weight}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WeightedUrl {
    Plain(String),
    Weighted {
        url: String,
        #[serde(default = "one")]
        #[schema(minimum = 1, maximum = 100)]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

/// An active health check: `GET <url><path>` every `interval`; a 2xx or 3xx answer within
/// the interval passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    #[schema(pattern = "^/")]
    pub path: String,
    /// `500ms`, `5s`, `1m`...
    #[schema(value_type = crate::policy::WindowText)]
    pub interval: Window,
}

impl WeightedUrl {
    /// The URL.
    pub fn url(&self) -> &str {
        match self {
            WeightedUrl::Plain(u) | WeightedUrl::Weighted { url: u, .. } => u,
        }
    }

    /// Its weight.
    pub fn weight(&self) -> u32 {
        match self {
            WeightedUrl::Plain(_) => 1,
            WeightedUrl::Weighted { weight, .. } => *weight,
        }
    }
}

impl RestEndpoint {
    /// An upstream of one URL.
    pub fn single(url: impl Into<String>) -> Self {
        Self {
            url: Some(url.into()),
            urls: vec![],
            health_check: None,
            tls: None,
        }
    }

    /// Every URL with its weight.
    pub fn endpoints(&self) -> Vec<(&str, u32)> {
        match &self.url {
            Some(u) => vec![(u.as_str(), 1)],
            None => self.urls.iter().map(|u| (u.url(), u.weight())).collect(),
        }
    }

    /// The URLs are valid and weighted sensibly; `field` is where this upstream is
    /// (`upstream.main`).
    pub(super) fn validate(&self, field: &str) -> Result<(), FieldError> {
        match (&self.url, self.urls.is_empty()) {
            (Some(u), true) => validate_url(&format!("{field}.url"), u)?,
            (Some(_), false) => {
                return Err(FieldError::new(
                    format!("{field}.urls"),
                    "give either url or urls, not both",
                ))
            }
            (None, true) => {
                return Err(FieldError::new(
                    format!("{field}.url"),
                    "is required (or urls, for several)",
                ))
            }
            (None, false) => {
                if self.urls.len() > MAX_URLS {
                    return Err(FieldError::new(
                        format!("{field}.urls"),
                        format!("at most {MAX_URLS} URLs"),
                    ));
                }
                for (i, u) in self.urls.iter().enumerate() {
                    validate_url(&format!("{field}.urls[{i}]"), u.url())?;
                    if !(1..=MAX_WEIGHT).contains(&u.weight()) {
                        return Err(FieldError::new(
                            format!("{field}.urls[{i}].weight"),
                            format!("must be 1 to {MAX_WEIGHT}"),
                        ));
                    }
                }
            }
        }
        if let Some(tls) = &self.tls {
            if let Some((url, _)) = self
                .endpoints()
                .into_iter()
                .find(|(u, _)| !u.starts_with("https://"))
            {
                return Err(FieldError::new(
                    format!("{field}.tls"),
                    format!("applies to https:// URLs only, and '{url}' is not one"),
                ));
            }
            tls.validate(&format!("{field}.tls"))?;
        }
        if let Some(h) = &self.health_check {
            if !h.path.starts_with('/') {
                return Err(FieldError::new(
                    format!("{field}.healthCheck.path"),
                    "must start with '/'",
                ));
            }
        }
        Ok(())
    }
}
