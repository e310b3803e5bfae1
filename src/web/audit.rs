//! The audit log: every action and login on the site is recorded, and `/audit` lists the
//! newest entries for admins.

use axum::extract::State;
use axum::response::Html;
use time::OffsetDateTime;

use super::error::WebError;
use super::Site;
use crate::catalog::{AuditOutcome, NewAuditEntry};

/// Maximum entries `/audit` shows. Older entries stay in the catalogue.
// TODO: add paging and filters so that older audit entries can be browsed.
const AUDIT_LIMIT: i64 = 500;

/// An audit entry being built; [`Entry::save`] stores it.
pub(super) struct Entry<'s> {
    site: &'s Site,
    entry: NewAuditEntry,
}

/// Starts an audit entry for `actor` doing `action` to `target`.
pub(super) fn record<'s>(
    site: &'s Site,
    actor: &str,
    action: &str,
    target: Option<String>,
    outcome: AuditOutcome,
) -> Entry<'s> {
    Entry {
        site,
        entry: NewAuditEntry {
            actor: actor.to_string(),
            action: action.to_string(),
            target,
            outcome,
            client: None,
            detail: None,
            at: OffsetDateTime::now_utc(),
        },
    }
}

impl Entry<'_> {
    pub(super) fn client(mut self, client: &str) -> Self {
        self.entry.client = Some(client.to_string());
        self
    }

    pub(super) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.entry.detail = Some(detail.into());
        self
    }

    /// Stores the entry and logs it. A catalogue failure is logged and does not fail
    /// the request, whose action has already happened.
    pub(super) async fn save(self) {
        let entry = &self.entry;
        tracing::info!(
            actor = %entry.actor,
            action = %entry.action,
            target = entry.target.as_deref().unwrap_or(""),
            outcome = ?entry.outcome,
            client = entry.client.as_deref().unwrap_or(""),
            detail = entry.detail.as_deref().unwrap_or(""),
            "audit"
        );
        if let Err(error) = self.site.state.catalog.record_audit(entry).await {
            tracing::error!(%error, action = %entry.action, actor = %entry.actor, "could not write the audit log");
        }
    }
}

/// Lists the newest audit log entries.
pub(super) async fn audit_page(State(site): State<Site>) -> Result<Html<String>, WebError> {
    let entries = site.state.catalog.audit_entries(AUDIT_LIMIT).await?;
    site.render(
        "audit.html",
        minijinja::context! { entries, audit_limit => AUDIT_LIMIT },
    )
}
