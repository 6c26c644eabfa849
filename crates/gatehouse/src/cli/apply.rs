//! `gatehouse apply`: artifact documents (and LLM provider templates, `kind:
//! LlmProviderTemplate`) to the platform, by handle, with a plan first.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use clap::Args;

use gatehouse_client::{Client, NewArtifact};
use gatehouse_core::llm::LlmTemplate;
use gatehouse_core::{ArtifactDocument, ArtifactKind, Handle};

/// The `kind` of a template document.
const TEMPLATE_KIND: &str = "LlmProviderTemplate";

/// One document of a file.
enum Document {
    Artifact(ArtifactDocument),
    /// An LLM provider template: `spec` is the template, its id `metadata.name` unless given.
    Template(LlmTemplate),
}

/// Parses a template document.
fn template_document(
    mut value: serde_json::Value,
) -> Result<LlmTemplate, gatehouse_core::FieldError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let mut spec = value
        .get_mut("spec")
        .map(serde_json::Value::take)
        .ok_or_else(|| gatehouse_core::FieldError::new("spec", "is required"))?;
    if let (Some(o), Some(n)) = (spec.as_object_mut(), name) {
        o.entry("id").or_insert(serde_json::Value::String(n));
    }
    LlmTemplate::parse(spec).map_err(|e| e.prefixed("spec"))
}

/// Create or update artifacts from YAML/JSON documents, by handle; shows the plan first.
///
/// Example: gatehouse apply -f apis/ --deploy edge-1
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A YAML/JSON file (one or many documents) or a directory of them.
    #[arg(short = 'f', long = "filename", required = true)]
    files: Vec<PathBuf>,
    /// Deploy what was applied to this gateway.
    #[arg(long, value_parser = super::handle)]
    deploy: Option<Handle>,
    /// Show the plan only.
    #[arg(long)]
    dry_run: bool,
}

/// What applying a document does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Update,
    Unchanged,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Unchanged => "unchanged",
        }
    }

    /// The plan's margin mark.
    fn mark(self) -> char {
        match self {
            Action::Create => '+',
            Action::Update => '~',
            Action::Unchanged => '=',
        }
    }
}

/// The files named on the command line; a directory stands for its YAML and JSON files.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = vec![];
    for p in paths {
        if p.is_dir() {
            let mut entries = vec![];
            for entry in std::fs::read_dir(p).with_context(|| format!("reading {}", p.display()))? {
                let path = entry
                    .with_context(|| format!("reading {}", p.display()))?
                    .path();
                if path
                    .extension()
                    .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
                {
                    entries.push(path);
                }
            }
            entries.sort();
            out.extend(entries);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The documents of one file, each validated; an error names the file and the field.
fn read_documents(path: &Path) -> anyhow::Result<Vec<Document>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let mut docs = vec![];
    for (i, chunk) in text.split("\n---").enumerate() {
        if chunk.trim().trim_start_matches("---").trim().is_empty() {
            continue;
        }
        let at = || format!("{} (document {})", path.display(), i + 1);
        let value = gatehouse_core::yaml::from_slice(chunk.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", at()))?;
        let doc = if value.get("kind").and_then(serde_json::Value::as_str) == Some(TEMPLATE_KIND) {
            Document::Template(template_document(value).map_err(|e| anyhow!("{}: {e}", at()))?)
        } else {
            Document::Artifact(
                ArtifactDocument::from_value(value).map_err(|e| anyhow!("{}: {e}", at()))?,
            )
        };
        docs.push(doc);
    }
    Ok(docs)
}

/// What applying `artifact` would do, given what the platform holds.
async fn plan(client: &Client, artifact: &NewArtifact) -> anyhow::Result<Action> {
    let kind = artifact.kind();
    match client.artifact(kind, &artifact.id).await {
        Ok(current) if current.matches(&artifact.spec) => Ok(Action::Unchanged),
        Ok(_) => Ok(Action::Update),
        Err(e) if e.is_not_found() => Ok(Action::Create),
        Err(e) => Err(e).with_context(|| format!("{}/{}", kind.collection(), artifact.id)),
    }
}

/// What applying a template would do.
async fn plan_template(client: &Client, t: &LlmTemplate) -> anyhow::Result<Action> {
    match client.llm_template(&t.id).await {
        Ok(current) if current.built_in => Err(anyhow!(
            "{TEMPLATE_KIND}/{}: a built-in template cannot be changed; give yours another id",
            t.id
        )),
        Ok(current) if current.template == *t => Ok(Action::Unchanged),
        Ok(_) => Ok(Action::Update),
        Err(e) if e.is_not_found() => Ok(Action::Create),
        Err(e) => Err(e).with_context(|| format!("{TEMPLATE_KIND}/{}", t.id)),
    }
}

/// Creates or updates templates first: providers name them.
async fn apply_templates(
    client: &Client,
    templates: &[LlmTemplate],
    dry_run: bool,
) -> anyhow::Result<usize> {
    let mut changes = 0;
    for t in templates {
        let action = plan_template(client, t).await?;
        println!(
            "{} {:<9} {TEMPLATE_KIND}/{}",
            action.mark(),
            action.as_str(),
            t.id
        );
        if dry_run {
            changes += usize::from(action != Action::Unchanged);
            continue;
        }
        let done = match action {
            Action::Create => client.create_llm_template(t).await.map(drop),
            Action::Update => client.replace_llm_template(t).await.map(drop),
            Action::Unchanged => Ok(()),
        };
        done.with_context(|| format!("{TEMPLATE_KIND}/{}", t.id))?;
        changes += usize::from(action != Action::Unchanged);
    }
    Ok(changes)
}

/// Creates or updates documents by handle; idempotent; with a plan first.
pub async fn run(args: ApplyArgs) -> anyhow::Result<()> {
    // Validate everything before changing anything.
    let mut docs = vec![];
    let mut templates = vec![];
    for f in collect_files(&args.files)? {
        for d in read_documents(&f)? {
            match d {
                Document::Artifact(a) => docs.push(a),
                Document::Template(t) => templates.push(t),
            }
        }
    }
    // Providers first: proxies refer to them.
    docs.sort_by_key(|d| ArtifactKind::ALL.iter().position(|k| *k == d.kind));
    let client = super::session()?;
    let template_changes = apply_templates(&client, &templates, args.dry_run).await?;
    let mut steps = vec![];
    for doc in &docs {
        let artifact = NewArtifact::from_document(doc);
        let action = plan(&client, &artifact).await?;
        steps.push((artifact, action));
    }
    for (a, action) in &steps {
        println!(
            "{} {:<9} {}/{}",
            action.mark(),
            action.as_str(),
            a.kind(),
            a.id
        );
    }
    let changes = template_changes
        + steps
            .iter()
            .filter(|(_, a)| *a != Action::Unchanged)
            .count();
    if args.dry_run {
        println!("dry run: {changes} change(s) planned, none made");
        return Ok(());
    }
    if changes == 0 && args.deploy.is_none() {
        println!("no change");
        return Ok(());
    }
    for (n, (artifact, action)) in steps.iter().enumerate() {
        let (kind, id) = (artifact.kind(), &artifact.id);
        let applied = match action {
            Action::Create => client.create_artifact(artifact).await.map(drop),
            Action::Update => client.update_artifact(artifact).await.map(drop),
            Action::Unchanged => Ok(()),
        };
        applied.with_context(|| format!("{kind}/{id}"))?;
        if let Some(gateway) = &args.deploy {
            let needs =
                *action != Action::Unchanged || !deployed_on(&client, kind, id, gateway).await?;
            if needs {
                client
                    .deploy(kind, id, gateway)
                    .await
                    .with_context(|| format!("deploying {kind}/{id} to {gateway}"))?;
            }
        }
        eprintln!(
            "[{}/{}] {kind}/{id}: {}",
            n + 1,
            steps.len(),
            action.as_str()
        );
    }
    println!("applied {changes} change(s)");
    Ok(())
}

/// Whether the artifact is deployed (or deploying) on the gateway.
async fn deployed_on(
    client: &Client,
    kind: ArtifactKind,
    id: &Handle,
    gateway: &Handle,
) -> anyhow::Result<bool> {
    let deployments = client.deployments(kind, id, Some(gateway)).await?;
    Ok(deployments.list.iter().any(|d| d.is_live()))
}
