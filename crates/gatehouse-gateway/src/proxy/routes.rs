//! The route table: compiled from the deployed artifacts, swapped atomically, read without a
//! lock. Matching is a hash lookup per path prefix to find the artifact, then a short scan of
//! its operations sorted most specific first (literal over parameter over wildcard).

use std::collections::HashMap;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Method};

use gatehouse_core::policy::{merged, Policy};
use gatehouse_core::protocol::{ApiKeyStatus, PlanStatus, SubscriptionStatus};
use gatehouse_core::spec::{AccessControl, AccessMode, ArtifactSpec};
use gatehouse_core::ArtifactKind;

use crate::proxy::llm::{LlmRoute, LlmState};
use crate::proxy::mcp::McpRoute;
use crate::proxy::metrics::ArtifactMetrics;
use crate::proxy::policies::api_key_auth::{key_digest, KeyEntry};
use crate::proxy::policies::subscription::{SubEntry, SubSet};
use crate::proxy::policies::{Chain, Cors, KeySet, RateLimiters};
use crate::proxy::pool::Pool;
use crate::proxy::upstream::UpstreamTls;
use crate::secrets::{self, Resolved, Secrets};
use crate::store::{State, StoredArtifact, StoredKey, StoredPlan, StoredSubscription};
use gatehouse_core::spec::RestEndpoint;

/// Where requests of an artifact go.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub scheme: Scheme,
    pub authority: Authority,
    /// Path prefix of the upstream URL, without a trailing slash (may be empty).
    pub base_path: String,
    /// `Host` sent upstream.
    pub host: HeaderValue,
}

impl Upstream {
    /// The upstream at `url`, if it is an absolute http(s) URL.
    pub fn parse(url: &str) -> Option<Self> {
        let uri: http::Uri = url.parse().ok()?;
        let authority = uri.authority()?.clone();
        Some(Self {
            scheme: uri.scheme()?.clone(),
            host: HeaderValue::from_str(authority.as_str()).ok()?,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(Box<str>),
    Param,
}

/// How the upstream path is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rewrite {
    /// The upstream base path, then the request path after the context.
    StripContext,
    /// Exactly the upstream URL's path (the MCP endpoint).
    UpstreamPath,
}

/// One compiled operation.
pub struct Op {
    method: Option<Method>,
    segs: Box<[Seg]>,
    wildcard: bool,
    pub rewrite: Rewrite,
    pub chain: Arc<Chain>,
}

impl Op {
    fn rank(&self) -> Vec<u8> {
        let mut r: Vec<u8> = self
            .segs
            .iter()
            .map(|s| if matches!(s, Seg::Lit(_)) { 0 } else { 1 })
            .collect();
        if self.wildcard {
            r.push(2);
        }
        r
    }

    /// Whether `rest` (the path after the context, `""` or starting with `/`) matches. One
    /// trailing slash is allowed.
    fn matches(&self, rest: &str) -> bool {
        let body = rest.strip_prefix('/').unwrap_or(rest);
        let body = body.strip_suffix('/').unwrap_or(body);
        let mut parts = (!body.is_empty())
            .then(|| body.split('/'))
            .into_iter()
            .flatten();
        for seg in self.segs.iter() {
            match parts.next() {
                Some(part) if !part.is_empty() => {
                    if let Seg::Lit(l) = seg {
                        if **l != *part {
                            return false;
                        }
                    }
                }
                _ => return false,
            }
        }
        self.wildcard || parts.next().is_none()
    }
}

fn compile_path(path: &str) -> (Box<[Seg]>, bool) {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    let mut segs = vec![];
    let mut wildcard = false;
    if !trimmed.is_empty() {
        for s in trimmed.split('/') {
            if s == "*" {
                wildcard = true;
            } else if s.starts_with('{') {
                segs.push(Seg::Param);
            } else {
                segs.push(Seg::Lit(s.into()));
            }
        }
    }
    (segs.into_boxed_slice(), wildcard)
}

/// Compiled access control of an LLM provider.
pub struct Access {
    deny_by_default: bool,
    exceptions: Vec<(Option<Vec<Method>>, Op)>,
}

impl Access {
    fn compile(ac: &AccessControl) -> Self {
        Self {
            deny_by_default: ac.mode == AccessMode::DenyAll,
            exceptions: ac
                .exceptions
                .iter()
                .map(|e| {
                    let methods = (!e.methods.is_empty())
                        .then(|| e.methods.iter().filter_map(|m| m.parse().ok()).collect());
                    (
                        methods,
                        op(None, &e.path, Rewrite::StripContext, Arc::default()),
                    )
                })
                .collect(),
        }
    }

    /// Whether `method rest` may pass.
    pub fn allows(&self, method: &Method, rest: &str) -> bool {
        let excepted = self.exceptions.iter().any(|(methods, op)| {
            methods.as_ref().is_none_or(|ms| ms.contains(method)) && op.matches(rest)
        });
        self.deny_by_default == excepted
    }
}

/// Everything the data plane needs about one served artifact.
pub struct Entry {
    pub artifact_id: Arc<str>,
    pub handle: Arc<str>,
    pub kind: ArtifactKind,
    pub main: Option<Arc<Pool>>,
    pub sandbox: Option<Arc<Pool>>,
    ops: Vec<Op>,
    /// Artifact-level CORS, for preflights that match no operation.
    pub cors: Option<Arc<Cors>>,
    pub access: Option<Access>,
    /// The LLM path of an LLM provider or proxy.
    pub llm: Option<Arc<LlmRoute>>,
    /// The MCP path of an MCP proxy.
    pub mcp: Option<Arc<McpRoute>>,
    pub keys: Arc<KeySet>,
    /// Present when the artifact offers subscription plans: callers need one of these.
    pub subscriptions: Option<SubSet>,
    pub metrics: ArtifactMetrics,
    /// Why the artifact cannot be served right now (e.g. its LLM provider is not deployed).
    pub unavailable: Option<Arc<str>>,
    /// Largest request body forwarded (`maxRequestBody`); past it, 413.
    pub max_request_body: Option<u64>,
    /// The secrets its document references: a new value recompiles it.
    pub secrets: Box<[Arc<str>]>,
}

impl Entry {
    /// How many operations it has.
    pub fn routes(&self) -> usize {
        self.ops.len()
    }

    /// The first operation matching `method rest`.
    pub fn find_op(&self, method: &Method, rest: &str) -> Option<&Op> {
        self.ops
            .iter()
            .find(|op| op.method.as_ref().is_none_or(|m| m == method) && op.matches(rest))
    }
}

/// The compiled table.
#[derive(Default, Clone)]
pub struct RouteTable {
    /// By context; looked up on every request, with a fast hash (the contexts are the
    /// operators', not the clients').
    pub(crate) by_context: rustc_hash::FxHashMap<Arc<str>, Arc<Entry>>,
    /// The context each served artifact holds, by artifact id.
    pub(crate) by_id: HashMap<Arc<str>, Arc<str>>,
    /// Deployed artifacts left out because another held their context.
    pub(crate) conflicts: usize,
    /// Number of operations compiled.
    pub routes: usize,
}

impl RouteTable {
    /// The artifact whose context is the longest segment-aligned prefix of `path`, with the
    /// rest of the path.
    pub fn find<'p>(&self, path: &'p str) -> Option<(&Arc<Entry>, &'p str)> {
        let mut end = path.len();
        loop {
            if let Some(e) = self.by_context.get(&path[..end]) {
                return Some((e, &path[end..]));
            }
            match path[..end].rfind('/') {
                Some(0) | None => return None,
                Some(i) => end = i,
            }
        }
    }

    /// Number of artifacts served.
    pub fn len(&self) -> usize {
        self.by_context.len()
    }

    /// Whether nothing is served.
    pub fn is_empty(&self) -> bool {
        self.by_context.is_empty()
    }

    /// Compiles the deployed artifacts (with their keys) into a table.
    pub fn compile(
        artifacts: &[StoredArtifact],
        keys: &[StoredKey],
        limiters: &RateLimiters,
    ) -> Self {
        let held = Held {
            artifacts,
            keys,
            plans: &[],
            subs: &[],
        };
        Self::compile_with(held, &Secrets::new(None), limiters, &LlmState::default())
    }

    /// Compiles the deployed artifacts with their keys, subscriptions and the plans, their
    /// references resolved.
    pub fn compile_with(
        held: Held<'_>,
        secrets: &Secrets,
        limiters: &RateLimiters,
        llm: &LlmState,
    ) -> Self {
        let Held {
            artifacts,
            keys,
            plans,
            subs,
        } = held;
        let plans: HashMap<&str, &StoredPlan> = plans.iter().map(|p| (p.id.as_str(), p)).collect();
        let mut subs_by: HashMap<&str, Vec<&StoredSubscription>> = HashMap::new();
        for sub in subs {
            subs_by
                .entry(sub.artifact_id.as_str())
                .or_default()
                .push(sub);
        }
        let mut keys_by: HashMap<&str, Vec<&StoredKey>> = HashMap::new();
        for k in keys {
            keys_by.entry(k.artifact_id.as_str()).or_default().push(k);
        }
        let resolved: Vec<Resolved> = artifacts
            .iter()
            .map(|a| match a.state {
                State::Deployed => secrets::resolve(a, secrets),
                State::Undeployed => Resolved {
                    artifact: Err(String::new()),
                    secrets: vec![],
                },
            })
            .collect();
        // Only a provider whose references resolved: a proxy must never forward through the
        // text of a reference.
        let providers: HashMap<&str, &StoredArtifact> = resolved
            .iter()
            .filter_map(|r| r.artifact.as_deref().ok())
            .filter(|a| a.kind() == ArtifactKind::LlmProvider)
            .map(|a| (a.handle(), a))
            .collect();
        let mut table = RouteTable::default();
        for (art, r) in artifacts.iter().zip(&resolved) {
            if art.state != State::Deployed {
                continue;
            }
            let context = art.document.spec.resolved_context();
            if table.by_context.contains_key(context.as_str()) {
                tracing::warn!(
                    context,
                    handle = art.handle(),
                    "context already served; artifact skipped"
                );
                table.conflicts += 1;
                continue;
            }
            let id = art.id.as_str();
            let inputs = EntryInputs {
                keys: keys_by.remove(id).unwrap_or_default(),
                subs: subs_by.remove(id).unwrap_or_default(),
                plans: &plans,
                providers: &providers,
                unresolved: r.artifact.as_ref().err().map(String::as_str),
            };
            let served = r.artifact.as_deref().unwrap_or(art);
            let mut entry = compile_artifact(served, inputs, limiters, llm);
            entry.secrets = r.secrets.clone().into();
            table.insert(art.id.as_str().into(), context.into(), entry);
        }
        limiters.retain(|scope| artifacts.iter().any(|a| a.id == scope));
        llm.retain(|scope| artifacts.iter().any(|a| a.id == scope));
        table
    }
}

fn hex_digest(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(h, &mut out).ok()?;
    Some(out)
}

fn op(method: Option<Method>, path: &str, rewrite: Rewrite, chain: Arc<Chain>) -> Op {
    let (segs, wildcard) = compile_path(path);
    Op {
        method,
        segs,
        wildcard,
        rewrite,
        chain,
    }
}

/// What an artifact's entry is compiled from besides the artifact.
pub struct EntryInputs<'a> {
    pub keys: Vec<&'a StoredKey>,
    pub subs: Vec<&'a StoredSubscription>,
    pub plans: &'a HashMap<&'a str, &'a StoredPlan>,
    /// The deployed LLM providers by handle (those an LLM proxy names, at least), their
    /// references resolved.
    pub providers: &'a HashMap<&'a str, &'a StoredArtifact>,
    /// Why the artifact's references cannot be resolved: it is then not served.
    pub unresolved: Option<&'a str>,
}

/// What the store holds, for compiling the whole table.
#[derive(Clone, Copy)]
pub struct Held<'a> {
    pub artifacts: &'a [StoredArtifact],
    pub keys: &'a [StoredKey],
    pub plans: &'a [StoredPlan],
    pub subs: &'a [StoredSubscription],
}

/// The entry of one deployed artifact: its routes, keys and subscriptions.
pub fn compile_artifact(
    art: &StoredArtifact,
    inputs: EntryInputs<'_>,
    limiters: &RateLimiters,
    llm: &LlmState,
) -> Entry {
    let mut keys = KeySet::default();
    for k in &inputs.keys {
        keys.insert(
            hex_digest(&k.key_hash).unwrap_or_else(|| key_digest(&k.key_hash)),
            KeyEntry {
                id: k.id.as_str().into(),
                active: k.status == ApiKeyStatus::Active,
                expires_at_ms: k.expires_at,
            },
        );
    }
    // Counts shared with other gateways are named by the control plane's uuid.
    limiters.names.record(&art.id, art.artifact_uuid.as_deref());
    llm.token_limits
        .names
        .record(&art.id, art.artifact_uuid.as_deref());
    let mut entry = compile_entry(art, &inputs, Arc::new(keys), limiters, llm);
    if !art.document.spec.subscription_plans().is_empty() {
        let mut set = SubSet::default();
        for s in inputs.subs {
            let plan = s.plan_id.as_deref().and_then(|p| inputs.plans.get(p));
            let quotas = plan
                .map(|p| {
                    p.limits
                        .iter()
                        .enumerate()
                        .filter(|(_, l)| l.stop_on_quota_reach)
                        .map(|(i, l)| {
                            limiters.get(
                                &format!("{}|sub:{}:{}:{i}", s.artifact_id, s.id, p.id),
                                l.limit_count,
                                l.time_unit.window(),
                                false,
                                // Plan quotas count locally while a shared store is away.
                                false,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let active = s.status == SubscriptionStatus::Active
                && plan.is_none_or(|p| p.status == PlanStatus::Active);
            set.insert(
                hex_digest(&s.token_hash).unwrap_or_else(|| key_digest(&s.token_hash)),
                SubEntry {
                    id: s.id.as_str().into(),
                    active,
                    quotas,
                },
            );
        }
        entry.subscriptions = Some(set);
    }
    entry
}

fn compile_entry(
    art: &StoredArtifact,
    inputs: &EntryInputs<'_>,
    keys: Arc<KeySet>,
    limiters: &RateLimiters,
    llm: &LlmState,
) -> Entry {
    let id = art.id.as_str();
    let providers = inputs.providers;
    let api_policies = art.document.spec.policies();
    let chain = |op_policies: &[Policy], scope: &str| {
        Arc::new(Chain::compile(
            merged(api_policies, op_policies),
            &format!("{id}|{scope}"),
            limiters,
        ))
    };
    let cors = chain(&[], "api").cors.clone();
    let mut entry = Entry {
        artifact_id: id.into(),
        handle: art.handle().into(),
        kind: art.kind(),
        main: None,
        sandbox: None,
        ops: vec![],
        cors,
        access: None,
        llm: None,
        mcp: None,
        keys,
        subscriptions: None,
        metrics: ArtifactMetrics::new(art.handle(), art.kind()),
        unavailable: None,
        max_request_body: None,
        secrets: Box::default(),
    };
    if let Some(why) = inputs.unresolved {
        entry.unavailable = Some(why.into());
        return entry;
    }
    match &art.document.spec {
        ArtifactSpec::RestApi(s) => {
            entry.max_request_body = s.max_request_body.map(|b| b.0);
            match pool_of(art.handle(), &s.upstream.main) {
                Ok(p) => entry.main = Some(p),
                Err(why) => entry.unavailable = Some(why.into()),
            }
            entry.sandbox = s
                .upstream
                .sandbox
                .as_ref()
                .and_then(|sb| pool_of(art.handle(), sb).ok());
            if s.operations.is_empty() {
                entry
                    .ops
                    .push(op(None, "/*", Rewrite::StripContext, chain(&[], "all")));
            }
            for (i, o) in s.operations.iter().enumerate() {
                let method = o.method.parse().ok();
                entry.ops.push(op(
                    method,
                    &o.path,
                    Rewrite::StripContext,
                    chain(&o.policies, &i.to_string()),
                ));
            }
            // Most specific first; the sort is stable, so ties keep the document's order.
            entry.ops.sort_by_cached_key(Op::rank);
        }
        ArtifactSpec::LlmProvider(s) => {
            entry.access = Some(Access::compile(&s.access_control));
            entry
                .ops
                .push(op(None, "/*", Rewrite::StripContext, chain(&[], "all")));
            match LlmRoute::provider(art, s, llm) {
                Ok(route) => {
                    entry.main = Some(Arc::new(Pool::single((*route.targets[0].upstream).clone())));
                    entry.llm = Some(Arc::new(route));
                }
                Err(why) => entry.unavailable = Some(why.into()),
            }
        }
        ArtifactSpec::LlmProxy(s) => {
            // The proxy's generic policies are its own merged over those of its first
            // provider (by priority); the LLM ones likewise, in `LlmRoute::proxy`.
            let primary = crate::proxy::llm::route::primary_provider(s, providers);
            let provider_policies = primary.map(|p| p.policies.as_slice()).unwrap_or_default();
            let ch = Arc::new(Chain::compile(
                merged(provider_policies, &s.policies),
                &format!("{id}|all"),
                limiters,
            ));
            entry.cors = ch.cors.clone();
            entry.access = primary.map(|p| Access::compile(&p.access_control));
            entry.ops.push(op(None, "/*", Rewrite::StripContext, ch));
            match LlmRoute::proxy(art, s, providers, llm) {
                Ok(route) => {
                    entry.main = Some(Arc::new(Pool::single((*route.targets[0].upstream).clone())));
                    entry.llm = Some(Arc::new(route));
                }
                Err(why) => entry.unavailable = Some(why.into()),
            }
        }
        ArtifactSpec::Mcp(s) => {
            let (route, main) = McpRoute::compile(art.handle(), s);
            match main {
                Ok(main) => entry.main = main.map(|u| Arc::new(Pool::single((*u).clone()))),
                Err(why) => entry.unavailable = Some(why.into()),
            }
            entry.mcp = Some(Arc::new(route));
            for m in [Method::POST, Method::GET, Method::DELETE] {
                entry.ops.push(op(
                    Some(m),
                    "/mcp",
                    Rewrite::UpstreamPath,
                    chain(&[], "mcp"),
                ));
            }
        }
    }
    entry
}

/// The pool of an upstream's URLs, its health checks started; why it cannot be used.
fn pool_of(artifact: &str, e: &RestEndpoint) -> Result<Arc<Pool>, String> {
    let mut endpoints = vec![];
    for (url, weight) in e.endpoints() {
        let upstream =
            Upstream::parse(url).ok_or_else(|| format!("upstream URL '{url}' cannot be used"))?;
        endpoints.push((upstream, weight, url.to_owned()));
    }
    if endpoints.is_empty() {
        return Err("the upstream has no URL".into());
    }
    let tls = match &e.tls {
        Some(t) => Some(Arc::new(UpstreamTls::build(t).map_err(|e| {
            format!("the upstream's TLS settings cannot be used: {e}")
        })?)),
        None => None,
    };
    let pool = Arc::new(Pool::new(artifact, endpoints).with_tls(tls));
    if let Some(h) = &e.health_check {
        pool.start_health_checks(h.path.clone(), h.interval.duration());
    }
    Ok(pool)
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "routes_props.rs"]
mod props;
