//! Gatehouse's shared vocabulary: artifact kinds and documents, handles, spec validation and the
//! control-plane ⇄ gateway protocol types. Both the platform and the gateway speak these types, so
//! what one side writes the other reads without translation.

pub mod crypto;
pub mod document;
pub mod handle;
pub mod kind;
pub mod llm;
pub mod policy;
pub mod prometheus;
pub mod protocol;
pub mod references;
pub mod spec;
pub mod validate;
pub mod yaml;

pub use document::{ArtifactDocument, Metadata, API_VERSION};
pub use handle::Handle;
pub use kind::ArtifactKind;
pub use validate::FieldError;
