//! The CLI for people and CI: `login`, `apply -f`, `get`, `deploy`. It talks to the platform's
//! public API with the token `login` keeps in the user's config directory (mode 0600).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::{json, Map, Value};

use gatehouse_core::{ArtifactDocument, ArtifactKind};

/// Where the CLI keeps the server and token.
fn credentials_path() -> anyhow::Result<PathBuf> {
    let dir = match std::env::var_os("GATEHOUSE_CONFIG_DIR") {
        Some(d) => PathBuf::from(d),
        None => match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) => PathBuf::from(x).join("gatehouse"),
            None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?)
                .join(".config/gatehouse"),
        },
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join("credentials.json"))
}

/// `gatehouse login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Platform base URL.
    #[arg(
        long,
        env = "GATEHOUSE_SERVER",
        default_value = "http://127.0.0.1:9243"
    )]
    server: String,
    #[arg(long, short, default_value = "admin")]
    username: String,
    /// Password (prompting is not supported; use GATEHOUSE_PASSWORD in scripts).
    #[arg(long, env = "GATEHOUSE_PASSWORD", hide_env_values = true)]
    password: String,
    /// Organization handle.
    #[arg(long)]
    organization: Option<String>,
}

/// A logged-in client.
pub struct Session {
    server: String,
    token: String,
    http: reqwest::Client,
}

impl Session {
    fn load() -> anyhow::Result<Self> {
        let path = credentials_path()?;
        let text = std::fs::read_to_string(&path)
            .context("not logged in: run `gatehouse login --server URL` first")?;
        let v: Value = serde_json::from_str(&text)?;
        Ok(Self {
            server: v["server"].as_str().unwrap_or_default().to_owned(),
            token: v["token"].as_str().unwrap_or_default().to_owned(),
            http: reqwest::Client::new(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.server))?;
        let status = res.status().as_u16();
        if status == 401 {
            bail!("the platform refused the stored token: run `gatehouse login` again");
        }
        let text = res.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

/// Logs in and keeps the token.
pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let server = args.server.trim_end_matches('/').to_owned();
    let res = reqwest::Client::new()
        .post(format!("{server}/api/v1/auth/login"))
        .json(&json!({"username": args.username, "password": args.password, "organization": args.organization}))
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    if !res.status().is_success() {
        bail!("login failed: {}", res.text().await.unwrap_or_default());
    }
    let body: Value = res.json().await?;
    let path = credentials_path()?;
    std::fs::write(
        &path,
        json!({"server": server, "token": body["token"]}).to_string(),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "logged in to {server} (organization {}); token kept in {}",
        body["organization"].as_str().unwrap_or("default"),
        path.display()
    );
    Ok(())
}

/// `gatehouse apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A YAML/JSON file (one or many documents) or a directory of them.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Deploy what was applied to this gateway.
    #[arg(long)]
    deploy: Option<String>,
    /// Show the plan only.
    #[arg(long)]
    dry_run: bool,
}

fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|e| {
                    e.extension()
                        .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                })
                .collect();
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The documents of one file, each validated; an error names the file and the field.
fn read_documents(path: &Path) -> anyhow::Result<Vec<ArtifactDocument>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut docs = vec![];
    for (i, chunk) in text.split("\n---").enumerate() {
        if chunk.trim().trim_start_matches("---").trim().is_empty() {
            continue;
        }
        let value = gatehouse_core::yaml::from_slice(chunk.as_bytes())
            .map_err(|e| anyhow::anyhow!("{} (document {}): {e}", path.display(), i + 1))?;
        let doc = ArtifactDocument::from_value(value)
            .map_err(|e| anyhow::anyhow!("{} (document {}): {e}", path.display(), i + 1))?;
        docs.push(doc);
    }
    Ok(docs)
}

/// The public API body for a document.
fn body_of(doc: &ArtifactDocument) -> Value {
    let mut body = doc.spec.to_value();
    body["id"] = json!(doc.metadata.name.as_str());
    if doc.kind.has_project() {
        let project = doc
            .metadata
            .labels
            .get("project")
            .and_then(Value::as_str)
            .unwrap_or("default");
        body["projectId"] = json!(project);
    }
    body
}

/// Whether the platform's artifact already says what the document says (credentials, which the
/// platform never returns, are not compared).
fn unchanged(doc: &ArtifactDocument, current: &Value) -> bool {
    let mut want = doc.spec.to_value();
    if let Some(auth) = want
        .pointer_mut("/upstream/auth")
        .and_then(Value::as_object_mut)
    {
        auth.remove("value");
    }
    let Value::Object(want) = want else {
        return false;
    };
    let mut have: Map<String, Value> = current.as_object().cloned().unwrap_or_default();
    if let Some(auth) = have
        .get_mut("upstream")
        .and_then(|u| u.get_mut("auth"))
        .and_then(Value::as_object_mut)
    {
        auth.remove("valueSet");
    }
    for k in ["id", "uuid", "kind", "projectId", "createdAt", "updatedAt"] {
        have.remove(k);
    }
    Value::Object(want) == Value::Object(have)
}

/// Creates or updates documents by handle; idempotent; with a plan first.
pub async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let files = collect_files(&args.files)?;
    // Validate everything before changing anything.
    let mut docs = vec![];
    for f in &files {
        docs.extend(read_documents(f)?);
    }
    // Providers first: proxies refer to them.
    docs.sort_by_key(|d| ArtifactKind::ALL.iter().position(|k| *k == d.kind));
    let session = Session::load()?;
    let mut plan = vec![];
    for d in &docs {
        let path = format!("/{}/{}", d.kind.collection(), d.metadata.name);
        let (s, current) = session.call(reqwest::Method::GET, &path, None).await?;
        let action = match s {
            404 => "create",
            200 if unchanged(d, &current) => "unchanged",
            200 => "update",
            other => bail!("{path}: the platform answered {other}: {current}"),
        };
        plan.push((d, action));
    }
    for (d, action) in &plan {
        let mark = match *action {
            "create" => "+",
            "update" => "~",
            _ => "=",
        };
        println!("{mark} {action:<9} {}/{}", d.kind, d.metadata.name);
    }
    let changes = plan.iter().filter(|(_, a)| *a != "unchanged").count();
    if args.dry_run {
        println!("dry run: {changes} change(s) planned, none made");
        return Ok(());
    }
    if changes == 0 && args.deploy.is_none() {
        println!("no change");
        return Ok(());
    }
    for (n, (d, action)) in plan.iter().enumerate() {
        let coll = d.kind.collection();
        let name = d.metadata.name.as_str();
        let (status, answer) = match *action {
            "create" => {
                session
                    .call(
                        reqwest::Method::POST,
                        &format!("/{coll}"),
                        Some(&body_of(d)),
                    )
                    .await?
            }
            "update" => {
                session
                    .call(
                        reqwest::Method::PUT,
                        &format!("/{coll}/{name}"),
                        Some(&body_of(d)),
                    )
                    .await?
            }
            _ => (200, Value::Null),
        };
        if status >= 400 {
            bail!(
                "{}/{name}: {} {}",
                d.kind,
                status,
                answer["message"].as_str().unwrap_or(&answer.to_string())
            );
        }
        if let Some(gw) = &args.deploy {
            let needs = *action != "unchanged" || !deployed_on(&session, d.kind, name, gw).await?;
            if needs {
                let (s, dep) = session
                    .call(
                        reqwest::Method::POST,
                        &format!("/{coll}/{name}/deployments"),
                        Some(&json!({"gatewayId": gw})),
                    )
                    .await?;
                if s >= 400 {
                    bail!(
                        "deploying {}/{name} to {gw}: {}",
                        d.kind,
                        dep["message"].as_str().unwrap_or(&dep.to_string())
                    );
                }
            }
        }
        eprintln!("[{}/{}] {}/{name}: {action}", n + 1, plan.len(), d.kind);
    }
    println!("applied {changes} change(s)");
    Ok(())
}

async fn deployed_on(
    session: &Session,
    kind: ArtifactKind,
    name: &str,
    gateway: &str,
) -> anyhow::Result<bool> {
    let (_, deps) = session
        .call(
            reqwest::Method::GET,
            &format!(
                "/{}/{name}/deployments?gatewayId={gateway}",
                kind.collection()
            ),
            None,
        )
        .await?;
    Ok(deps["list"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| matches!(d["status"].as_str(), Some("DEPLOYED" | "DEPLOYING"))))
}

/// Output formats of `get`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// `gatehouse get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// rest-apis, llm-providers, llm-proxies, mcp-proxies, gateways, projects.
    kind: String,
    handle: Option<String>,
    #[arg(short, long, value_enum, default_value = "table")]
    output: Output,
}

/// Lists or reads resources.
pub async fn get(args: GetArgs) -> anyhow::Result<()> {
    let session = Session::load()?;
    let path = match &args.handle {
        Some(h) => format!("/{}/{h}", args.kind),
        None => format!("/{}", args.kind),
    };
    let (s, v) = session.call(reqwest::Method::GET, &path, None).await?;
    if s >= 400 {
        bail!(
            "{path}: {} {}",
            s,
            v["message"].as_str().unwrap_or(&v.to_string())
        );
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Output::Yaml => print!("{}", serde_norway::to_string(&v)?),
        Output::Table => {
            let rows: Vec<Value> = match v.get("list") {
                Some(Value::Array(l)) => l.clone(),
                _ => vec![v],
            };
            println!("{:<30} {:<30} CONTEXT/STATUS", "ID", "DISPLAY NAME");
            for r in rows {
                let extra = r
                    .get("context")
                    .or_else(|| r.pointer("/status/connected"))
                    .cloned()
                    .unwrap_or(Value::Null);
                println!(
                    "{:<30} {:<30} {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["displayName"].as_str().unwrap_or_default(),
                    match extra {
                        Value::String(s) => s,
                        Value::Bool(b) => format!("connected={b}"),
                        _ => String::new(),
                    }
                );
            }
        }
    }
    Ok(())
}

/// `gatehouse deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// `<kind>/<handle>`, e.g. rest-apis/orders.
    target: String,
    #[arg(long)]
    gateway: String,
    /// Return when the gateway has acked (or fail with its reason).
    #[arg(long)]
    wait: bool,
}

/// Deploys an artifact to a gateway.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let session = Session::load()?;
    let (kind, name) = args
        .target
        .split_once('/')
        .context("the target is <kind>/<handle>, e.g. rest-apis/orders")?;
    let (s, dep) = session
        .call(
            reqwest::Method::POST,
            &format!("/{kind}/{name}/deployments"),
            Some(&json!({"gatewayId": args.gateway})),
        )
        .await?;
    if s >= 400 {
        bail!("{}", dep["message"].as_str().unwrap_or(&dep.to_string()));
    }
    let id = dep["deploymentId"].as_str().unwrap_or_default().to_owned();
    println!(
        "deployment {id}: {}",
        dep["status"].as_str().unwrap_or_default()
    );
    if !args.wait {
        return Ok(());
    }
    wait_for(&session, kind, name, &id, "DEPLOYED", &args.gateway).await
}

/// Waits until deployment `id` reaches `want` (the gateway acked), or fails with its reason.
async fn wait_for(
    session: &Session,
    kind: &str,
    name: &str,
    id: &str,
    want: &str,
    gateway: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, d) = session
            .call(
                reqwest::Method::GET,
                &format!("/{kind}/{name}/deployments/{id}"),
                None,
            )
            .await?;
        match d["status"].as_str() {
            Some(s) if s == want => {
                println!("{}", want.to_lowercase());
                return Ok(());
            }
            Some("FAILED") => bail!(
                "failed: {} {}",
                d["statusReason"].as_str().unwrap_or_default(),
                d["statusMessage"].as_str().unwrap_or_default()
            ),
            _ if Instant::now() > deadline => bail!("no ack from gateway {gateway} in time"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// `gatehouse undeploy|restore`.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// `<kind>/<handle>`.
    target: String,
    #[arg(long)]
    gateway: String,
    /// Return when the gateway has acked (or fail with its reason).
    #[arg(long)]
    wait: bool,
}

/// Undeploys (or restores) the artifact's current deployment on a gateway.
pub async fn change_state(args: StateArgs, action: &str) -> anyhow::Result<()> {
    let session = Session::load()?;
    let (kind, name) = args
        .target
        .split_once('/')
        .context("the target is <kind>/<handle>, e.g. rest-apis/orders")?;
    let (s, deps) = session
        .call(
            reqwest::Method::GET,
            &format!("/{kind}/{name}/deployments?gatewayId={}", args.gateway),
            None,
        )
        .await?;
    if s >= 400 {
        bail!("{}", deps["message"].as_str().unwrap_or(&deps.to_string()));
    }
    let list = deps["list"].as_array().cloned().unwrap_or_default();
    // Undeploy the current one; restore the newest that is not current-and-live.
    let pick = list.iter().find(|d| match action {
        "undeploy" => matches!(
            d["status"].as_str(),
            Some("DEPLOYED" | "DEPLOYING" | "FAILED")
        ),
        _ => !matches!(d["status"].as_str(), Some("DEPLOYED" | "DEPLOYING")),
    });
    let Some(dep) = pick else {
        bail!(
            "{} has no deployment on {} to {action}",
            args.target,
            args.gateway
        )
    };
    let id = dep["deploymentId"].as_str().unwrap_or_default().to_owned();
    let (s, d) = session
        .call(
            reqwest::Method::POST,
            &format!("/{kind}/{name}/deployments/{id}/{action}"),
            Some(&json!({})),
        )
        .await?;
    if s >= 400 {
        bail!("{}", d["message"].as_str().unwrap_or(&d.to_string()));
    }
    println!(
        "deployment {id}: {}",
        d["status"].as_str().unwrap_or_default()
    );
    if args.wait {
        let want = if action == "undeploy" {
            "UNDEPLOYED"
        } else {
            "DEPLOYED"
        };
        wait_for(&session, kind, name, &id, want, &args.gateway).await?;
    }
    Ok(())
}

/// `gatehouse delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// `<kind>/<handle>`.
    target: String,
}

/// Deletes an artifact (every gateway of the organization is told).
pub async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let session = Session::load()?;
    let (kind, name) = args
        .target
        .split_once('/')
        .context("the target is <kind>/<handle>, e.g. rest-apis/orders")?;
    let (s, v) = session
        .call(reqwest::Method::DELETE, &format!("/{kind}/{name}"), None)
        .await?;
    if s >= 400 {
        bail!("{}", v["message"].as_str().unwrap_or(&v.to_string()));
    }
    println!("deleted {}", args.target);
    Ok(())
}

/// Lists gateways with their sync status.
pub async fn gateways() -> anyhow::Result<()> {
    let session = Session::load()?;
    let (s, v) = session
        .call(reqwest::Method::GET, "/gateways", None)
        .await?;
    if s >= 400 {
        bail!("{}", v["message"].as_str().unwrap_or(&v.to_string()));
    }
    println!(
        "{:<24} {:<10} {:<8} {:>9} {:>9}",
        "GATEWAY", "CONNECTED", "IN SYNC", "APPLIED", "ORG REV"
    );
    for g in v["list"].as_array().into_iter().flatten() {
        let st = &g["status"];
        println!(
            "{:<24} {:<10} {:<8} {:>9} {:>9}",
            g["id"].as_str().unwrap_or_default(),
            st["connected"].to_string(),
            st["inSync"].to_string(),
            st["appliedRevision"].to_string(),
            st["orgRevision"].to_string()
        );
    }
    Ok(())
}

/// `gatehouse keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// `create`, `list` or `revoke`.
    #[arg(value_parser = ["create", "list", "revoke"])]
    action: String,
    /// `<kind>/<handle>` of the artifact.
    target: String,
    /// The key's handle (create: optional; revoke: required).
    #[arg(long)]
    id: Option<String>,
    /// Display name of a new key.
    #[arg(long, default_value = "cli key")]
    name: String,
}

/// Creates, lists or revokes an artifact's API keys.
pub async fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let session = Session::load()?;
    let (kind, name) = args
        .target
        .split_once('/')
        .context("the target is <kind>/<handle>, e.g. rest-apis/orders")?;
    let base = format!("/{kind}/{name}/api-keys");
    let (s, v) = match args.action.as_str() {
        "create" => {
            session
                .call(
                    reqwest::Method::POST,
                    &base,
                    Some(&json!({"id": args.id, "displayName": args.name})),
                )
                .await?
        }
        "list" => session.call(reqwest::Method::GET, &base, None).await?,
        _ => {
            let id = args.id.as_deref().context("revoke needs --id")?;
            session
                .call(reqwest::Method::DELETE, &format!("{base}/{id}"), None)
                .await?
        }
    };
    if s >= 400 {
        bail!("{}", v["message"].as_str().unwrap_or(&v.to_string()));
    }
    match args.action.as_str() {
        "create" => println!(
            "key {} created; it is shown only now:\n{}",
            v["id"].as_str().unwrap_or_default(),
            v["apiKey"].as_str().unwrap_or_default()
        ),
        "list" => {
            for k in v["list"].as_array().into_iter().flatten() {
                println!(
                    "{:<24} {:<10} {}",
                    k["id"].as_str().unwrap_or_default(),
                    k["status"].as_str().unwrap_or_default(),
                    k["maskedApiKey"].as_str().unwrap_or_default()
                );
            }
        }
        _ => println!("revoked"),
    }
    Ok(())
}
