//! An LLM artifact compiled for the data plane: the API its clients speak, the providers it
//! forwards to (one for a provider's own context, one or more for a proxy) and its LLM policies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue};

use gatehouse_core::llm::{self, ApiFamily, LlmTemplate};
use gatehouse_core::policy::{ModelAllowListParams, Policy, PromptSizeLimitParams};
use gatehouse_core::spec::{ArtifactSpec, Failover, LlmProviderSpec, LlmProxySpec};

use super::metrics::TargetMetrics;
use super::token_limit::{TokenLimit, TokenLimits};
use crate::llm::guardrails::{PiiMasker, RegexGuard};
use crate::llm::pricing::Pricing;
use crate::proxy::routes::Upstream;
use crate::quota_store::QuotaStore;
use crate::store::StoredArtifact;

/// What LLM routes keep across route-table rebuilds, and the pricing table.
pub struct LlmState {
    pub token_limits: TokenLimits,
    cooldowns: Mutex<HashMap<String, Arc<Cooldowns>>>,
    pub pricing: Arc<Pricing>,
}

impl Default for LlmState {
    fn default() -> Self {
        Self::new(Pricing::builtin())
    }
}

impl LlmState {
    /// State with `pricing` for cost.
    pub fn new(pricing: Pricing) -> Self {
        Self::sharing(pricing, None)
    }

    /// State with `pricing` for cost, its token limits counting in `store` too.
    pub fn sharing(pricing: Pricing, store: Option<Arc<QuotaStore>>) -> Self {
        Self {
            token_limits: TokenLimits::with_store(store),
            cooldowns: Mutex::default(),
            pricing: Arc::new(pricing),
        }
    }

    fn cooldowns(&self, artifact_id: &str) -> Arc<Cooldowns> {
        let mut map = self.cooldowns.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(artifact_id.to_owned()).or_default().clone()
    }

    /// Forgets the state of artifacts no longer held.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.token_limits.retain(&keep);
        let mut map = self.cooldowns.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|id, _| keep(id));
    }
}

/// Until when each provider of one proxy is skipped after it failed.
#[derive(Default)]
pub struct Cooldowns {
    until: Mutex<HashMap<Arc<str>, Instant>>,
}

impl Cooldowns {
    /// Skips `provider` for `for_` from `now`.
    pub fn cool(&self, provider: &Arc<str>, now: Instant, for_: Duration) {
        let mut m = self.until.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(provider.clone(), now + for_);
    }

    /// Whether `provider` is being skipped at `now`.
    pub fn is_cooling(&self, provider: &str, now: Instant) -> bool {
        let m = self.until.lock().unwrap_or_else(|e| e.into_inner());
        m.get(provider).is_some_and(|t| *t > now)
    }
}

/// One provider a route forwards to.
pub struct Target {
    /// The provider's handle (the `provider` label of the metrics).
    pub provider: Arc<str>,
    pub upstream: Arc<Upstream>,
    pub credential: Option<(HeaderName, HeaderValue)>,
    /// Headers the template always sends (unless the client sent them).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub template: Arc<LlmTemplate>,
    pub weight: u32,
    pub priority: u32,
    /// The client speaks OpenAI chat completions and this provider Anthropic messages.
    pub translate: bool,
    pub metrics: TargetMetrics,
}

/// The LLM policies of a route, compiled.
#[derive(Default)]
pub struct LlmPolicies {
    pub allow: Option<ModelAllowListParams>,
    pub token_limits: Vec<Arc<TokenLimit>>,
    pub guard: Option<RegexGuard>,
    pub masker: Option<PiiMasker>,
    pub size: Option<PromptSizeLimitParams>,
}

impl LlmPolicies {
    fn compile<'a>(
        policies: impl IntoIterator<Item = &'a Policy>,
        scope: &str,
        state: &LlmState,
    ) -> Self {
        let mut out = Self::default();
        for p in policies {
            match p {
                Policy::ModelAllowList(params) => out.allow = Some(params.clone()),
                Policy::TokenRateLimit(params) => {
                    out.token_limits.push(state.token_limits.get(scope, params))
                }
                Policy::RegexGuardrail(params) => out.guard = Some(RegexGuard::new(params)),
                Policy::PiiMasking(params) => out.masker = Some(PiiMasker::new(params)),
                Policy::PromptSizeLimit(params) => out.size = Some(params.clone()),
                // Enforced by the generic chain (`proxy/policies`).
                Policy::ApiKeyAuth(_)
                | Policy::JwtAuth(_)
                | Policy::McpAuthz(_)
                | Policy::RateLimit(_)
                | Policy::Cors(_)
                | Policy::SetHeaders(_) => {}
            }
        }
        out
    }

    /// Whether requests must be read before they are forwarded.
    pub fn reads_requests(&self) -> bool {
        self.allow.is_some() || self.guard.is_some() || self.masker.is_some() || self.size.is_some()
    }
}

/// A compiled LLM route.
pub struct LlmRoute {
    /// The handle clients call (the `artifact` label of the metrics).
    pub artifact: Arc<str>,
    /// The API clients speak.
    pub api: ApiFamily,
    /// The template whose `requestModel` finds the model in client requests.
    pub client_template: Arc<LlmTemplate>,
    /// Providers, in the order written.
    pub targets: Vec<Target>,
    /// How requests move between providers; `None` for one provider without failover.
    pub failover: Option<Failover>,
    pub cooldowns: Arc<Cooldowns>,
    pub policies: LlmPolicies,
    pub pricing: Arc<Pricing>,
}

/// The deployed spec of the provider named `id`.
fn provider_spec<'a>(
    providers: &HashMap<&str, &'a StoredArtifact>,
    id: &str,
) -> Option<&'a LlmProviderSpec> {
    match &providers.get(id)?.document.spec {
        ArtifactSpec::LlmProvider(ps) => Some(ps),
        _ => None,
    }
}

/// A proxy's first provider by priority (whose policies it inherits), when deployed.
pub fn primary_provider<'a>(
    s: &LlmProxySpec,
    providers: &HashMap<&str, &'a StoredArtifact>,
) -> Option<&'a LlmProviderSpec> {
    let first = s.provider_list().into_iter().min_by_key(|p| p.priority)?;
    provider_spec(providers, first.id.as_str())
}

/// Why an LLM route cannot be served.
pub type Unservable = String;

fn template_of(p: &LlmProviderSpec) -> Result<Arc<LlmTemplate>, Unservable> {
    p.resolved_template().cloned().map(Arc::new).ok_or_else(|| {
        format!(
            "LLM provider template '{}' is not known to this gateway (built in: {})",
            p.template,
            llm::builtin_ids()
        )
    })
}

fn target(
    artifact: &str,
    handle: &str,
    p: &LlmProviderSpec,
    client_api: ApiFamily,
    weight: u32,
    priority: u32,
) -> Result<Target, Unservable> {
    let template = template_of(p)?;
    let translate = match (client_api, template.api) {
        (a, b) if a == b => false,
        (ApiFamily::Openai, ApiFamily::Anthropic) => true,
        (a, b) => {
            return Err(format!(
                "LLM provider '{handle}' speaks the {b} API and clients of this route the {a} API; only openai in front of anthropic is translated"
            ))
        }
    };
    let upstream = Upstream::parse(&p.upstream.url)
        .map(Arc::new)
        .ok_or_else(|| format!("upstream URL '{}' cannot be used", p.upstream.url))?;
    let headers = template
        .headers
        .iter()
        .filter_map(|(k, v)| {
            Some((
                HeaderName::from_bytes(k.as_bytes()).ok()?,
                HeaderValue::from_str(v).ok()?,
            ))
        })
        .collect();
    Ok(Target {
        provider: handle.into(),
        upstream,
        credential: credential(p, &template),
        headers,
        template,
        weight,
        priority,
        translate,
        metrics: TargetMetrics::new(artifact, handle),
    })
}

/// The header and value that carry a provider's credential upstream: the spec's header and
/// value as written, or the template's header with its prefix before the value.
fn credential(p: &LlmProviderSpec, t: &LlmTemplate) -> Option<(HeaderName, HeaderValue)> {
    let auth = p.upstream.auth.as_ref()?;
    let secret = auth.value.as_deref()?;
    let (name, value) = match &auth.header {
        Some(h) => (
            HeaderName::from_bytes(h.as_bytes()).ok()?,
            secret.to_owned(),
        ),
        None => {
            let prefix = t.auth.prefix.as_deref().unwrap_or_default();
            let value = if secret.starts_with(prefix) {
                secret.to_owned()
            } else {
                format!("{prefix}{secret}")
            };
            (t.auth.header.header_name().clone(), value)
        }
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    value.set_sensitive(true);
    Some((name, value))
}

impl LlmRoute {
    /// A provider's own route.
    pub fn provider(
        art: &StoredArtifact,
        p: &LlmProviderSpec,
        state: &LlmState,
    ) -> Result<Self, Unservable> {
        let template = template_of(p)?;
        let t = target(art.handle(), art.handle(), p, template.api, 1, 0)?;
        Ok(Self {
            artifact: art.handle().into(),
            api: template.api,
            client_template: template,
            targets: vec![t],
            failover: None,
            cooldowns: state.cooldowns(&art.id),
            policies: LlmPolicies::compile(&p.policies, &format!("{}|llm", art.id), state),
            pricing: state.pricing.clone(),
        })
    }

    /// A proxy's route over its providers (looked up by handle among the deployed ones). Its
    /// policies are its own merged over those of its first provider by priority.
    pub fn proxy(
        art: &StoredArtifact,
        s: &LlmProxySpec,
        providers: &HashMap<&str, &StoredArtifact>,
        state: &LlmState,
    ) -> Result<Self, Unservable> {
        let list = s.provider_list();
        let mut specs = Vec::with_capacity(list.len());
        for wp in &list {
            let spec = provider_spec(providers, wp.id.as_str()).ok_or_else(|| {
                format!("LLM provider '{}' is not deployed on this gateway", wp.id)
            })?;
            specs.push((wp, spec));
        }
        let primary = primary_provider(s, providers).ok_or("an LLM proxy names no provider")?;
        let primary_template = template_of(primary)?;
        let api = s.api.unwrap_or(primary_template.api);
        let client_template = if api == primary_template.api {
            primary_template
        } else {
            llm::builtin(api.as_str())
                .cloned()
                .map(Arc::new)
                .ok_or_else(|| format!("no built-in template speaks the {api} API"))?
        };
        let targets = specs
            .iter()
            .map(|(wp, spec)| {
                target(
                    art.handle(),
                    wp.id.as_str(),
                    spec,
                    api,
                    wp.weight,
                    wp.priority,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let failover = match (&s.failover, targets.len()) {
            (Some(f), _) => Some(f.clone()),
            (None, n) if n > 1 => Some(Failover::default()),
            (None, _) => None,
        };
        let policies = gatehouse_core::policy::merged(&primary.policies, &s.policies);
        Ok(Self {
            artifact: art.handle().into(),
            api,
            client_template,
            targets,
            failover,
            cooldowns: state.cooldowns(&art.id),
            policies: LlmPolicies::compile(policies, &format!("{}|llm", art.id), state),
            pricing: state.pricing.clone(),
        })
    }

    /// The order in which providers are tried for one request: by priority, spread by weight
    /// within one priority (`pick` draws in `0..total weight`), providers cooling down last.
    pub fn attempt_order(&self, now: Instant, mut pick: impl FnMut(u32) -> u32) -> Vec<usize> {
        if self.targets.len() == 1 {
            return vec![0];
        }
        let mut by_priority: Vec<usize> = (0..self.targets.len()).collect();
        by_priority.sort_by_key(|&i| self.targets[i].priority);
        let mut order = Vec::with_capacity(by_priority.len());
        let mut start = 0;
        while start < by_priority.len() {
            let prio = self.targets[by_priority[start]].priority;
            let end = by_priority[start..]
                .iter()
                .position(|&i| self.targets[i].priority != prio)
                .map_or(by_priority.len(), |n| start + n);
            let mut group: Vec<usize> = by_priority[start..end].to_vec();
            while !group.is_empty() {
                let total: u32 = group.iter().map(|&i| self.targets[i].weight).sum();
                let mut r = pick(total.max(1));
                let at = group
                    .iter()
                    .position(|&i| {
                        let w = self.targets[i].weight;
                        if r < w {
                            true
                        } else {
                            r -= w;
                            false
                        }
                    })
                    .unwrap_or(0);
                order.push(group.remove(at));
            }
            start = end;
        }
        let (cool, warm): (Vec<usize>, Vec<usize>) = order
            .into_iter()
            .partition(|&i| self.cooldowns.is_cooling(&self.targets[i].provider, now));
        let mut order = warm;
        order.extend(cool);
        let max = self
            .failover
            .as_ref()
            .and_then(|f| f.max_attempts)
            .map_or(order.len(), |m| m as usize);
        order.truncate(if self.failover.is_some() {
            max.max(1)
        } else {
            1
        });
        order
    }
}
