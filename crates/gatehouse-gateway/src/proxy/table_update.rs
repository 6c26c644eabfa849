//! Changing one artifact's entry in the route table without compiling the others: the maps are
//! copied (pointers to the compiled entries, not the entries) and the artifact's entry replaced,
//! so a change costs the same at ten artifacts or ten thousand, bar the copy. Requests in flight
//! finish on the table they started with.

use std::sync::Arc;

use super::routes::{Entry, RouteTable};

/// Why a change needs the whole table compiled instead: which artifact serves a context is
/// decided among all the artifacts that claim it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NeedsRebuild {
    #[error("the context is served by another artifact")]
    ContextTaken,
    #[error("a context was freed that a skipped artifact may claim")]
    ContextFreed,
}

impl RouteTable {
    /// Serves `entry` at `context` for artifact `id`.
    pub(crate) fn insert(&mut self, id: Arc<str>, context: Arc<str>, entry: Entry) {
        self.routes += entry.routes();
        self.by_id.insert(id, context.clone());
        self.by_context.insert(context, Arc::new(entry));
    }

    /// Stops serving artifact `id`.
    fn remove(&mut self, id: &str) {
        if let Some(context) = self.by_id.remove(id) {
            if let Some(e) = self.by_context.remove(&context) {
                self.routes -= e.routes();
            }
        }
    }

    /// This table with artifact `id` served as `entry` at `context`, or no longer served.
    pub fn with_artifact(
        &self,
        id: &str,
        served: Option<(String, Entry)>,
    ) -> Result<RouteTable, NeedsRebuild> {
        let mut t = self.clone();
        let old = t.by_id.get(id).cloned();
        t.remove(id);
        let freed = match (&old, &served) {
            (Some(o), Some((c, _))) => **o != *c.as_str(),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if freed && t.conflicts > 0 {
            return Err(NeedsRebuild::ContextFreed);
        }
        if let Some((context, entry)) = served {
            if t.by_context.contains_key(context.as_str()) {
                return Err(NeedsRebuild::ContextTaken);
            }
            t.insert(id.into(), context.into(), entry);
        }
        Ok(t)
    }

    /// Whether artifact `id` is served.
    pub fn serves(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// The artifacts whose documents reference secret `id` (served, or held back for want of
    /// a value).
    pub fn referencing(&self, secret: &str) -> Vec<Arc<str>> {
        self.by_context
            .values()
            .filter(|e| e.secrets.iter().any(|s| **s == *secret))
            .map(|e| e.artifact_id.clone())
            .collect()
    }

    /// Whether artifact `id` is served as an LLM provider (LLM proxies depend on it).
    pub fn is_provider(&self, id: &str) -> bool {
        self.by_id
            .get(id)
            .and_then(|c| self.by_context.get(c))
            .is_some_and(|e| e.kind == gatehouse_core::ArtifactKind::LlmProvider)
    }
}
