//! LLM provider templates: the built-in ones and the organization's own.

use gatehouse_core::llm::LlmTemplate;
use reqwest::Method;
use serde::Deserialize;

use crate::{Client, ClientError, List};

/// A template as the platform returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateInfo {
    /// The template's own fields.
    #[serde(flatten)]
    pub template: LlmTemplate,
    /// Built into Gatehouse (read-only).
    pub built_in: bool,
    /// When the organization created its template (absent for built-ins).
    #[serde(default)]
    pub created_at: Option<String>,
    /// When the organization last replaced its template (absent for built-ins).
    #[serde(default)]
    pub updated_at: Option<String>,
}

impl Client {
    /// The built-in templates, then the organization's own.
    pub async fn llm_templates(&self) -> Result<List<TemplateInfo>, ClientError> {
        self.call(Method::GET, "/llm-provider-templates", None::<&()>)
            .await
    }

    /// One template.
    pub async fn llm_template(&self, id: &str) -> Result<TemplateInfo, ClientError> {
        self.call(
            Method::GET,
            &format!("/llm-provider-templates/{id}"),
            None::<&()>,
        )
        .await
    }

    /// Creates one of the organization's templates.
    pub async fn create_llm_template(
        &self,
        template: &LlmTemplate,
    ) -> Result<TemplateInfo, ClientError> {
        self.call(Method::POST, "/llm-provider-templates", Some(template))
            .await
    }

    /// Replaces one of the organization's templates (by its id).
    pub async fn replace_llm_template(
        &self,
        template: &LlmTemplate,
    ) -> Result<TemplateInfo, ClientError> {
        self.call(
            Method::PUT,
            &format!("/llm-provider-templates/{}", template.id),
            Some(template),
        )
        .await
    }

    /// Deletes one of the organization's templates.
    pub async fn delete_llm_template(&self, id: &str) -> Result<(), ClientError> {
        self.call_no_content(Method::DELETE, &format!("/llm-provider-templates/{id}"))
            .await
    }
}
