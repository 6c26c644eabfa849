//! The frame every console page shares: head, navigation, who is signed in, sign-out.

use maud::{html, Markup, DOCTYPE};

use super::session::Session;
use gatehouse_core::ArtifactKind;

/// The human name of a kind's collection.
pub fn kind_title(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::RestApi => "REST APIs",
        ArtifactKind::LlmProvider => "LLM providers",
        ArtifactKind::LlmProxy => "LLM proxies",
        ArtifactKind::Mcp => "MCP proxies",
    }
}

/// A whole page. `live` names the server-sent event stream that keeps its values current.
pub fn page(session: Option<&Session>, title: &str, live: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Gatehouse" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body data-live=[live] {
                @if let Some(s) = session {
                    header.top {
                        a.brand href="/console/" { "Gatehouse" }
                        nav {
                            a href="/console/" { "Overview" }
                            @for kind in ArtifactKind::ALL {
                                a href={ "/console/" (kind.collection()) } { (kind_title(kind)) }
                            }
                            a href="/console/plans" { "Plans" }
                            a href="/console/changes" { "Change log" }
                            @if s.may(&axum::http::Method::GET, "/api/v1/users") {
                                a href="/console/users" { "Users" }
                                a href="/console/audit" { "Audit log" }
                            }
                        }
                        div.who {
                            a #who href="/console/account" { (s.caller.username) " · " (s.caller.role) " · " (s.org_handle) }
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.secondary #signout type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden field every form carries.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}
