//! The text of an alert and the bodies that each webhook format and e-mail carry.

use serde::Serialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::catalog::AlertRow;
use crate::fleet::{AlertEvent, WebhookFormat};

/// Maximum characters of a run's error quoted in an alert; chat tools cut or reject long
/// messages, and the run page shows the whole error.
const MAX_ERROR_CHARS: usize = 500;

/// The `json` webhook body, one object per alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertPayload<'a> {
    /// `failure`, `rpo` or `recovery`.
    pub event: &'static str,
    pub instance: &'a str,
    pub database: &'a str,
    /// `full`, `diff` or `log`; `null` for an RPO alert, which covers the database.
    pub backup_type: Option<&'static str>,
    pub message: &'a str,
    /// The run that caused the alert; `null` for RPO alerts.
    pub run_id: Option<i64>,
    /// Page of the run or database on the admin site; `null` without `alerts.site_url`.
    pub link: Option<String>,
    /// When the alert was raised, RFC 3339 in UTC.
    pub at: String,
    /// bakfleet's alert id, the same in every target's copy.
    pub alert_id: i64,
}

/// Shortens a run's error to its first line and [`MAX_ERROR_CHARS`] characters.
pub fn short_error(error: &str) -> String {
    let first_line = error.lines().next().unwrap_or("").trim();
    if first_line.chars().count() <= MAX_ERROR_CHARS {
        return first_line.to_string();
    }
    let mut shortened: String = first_line.chars().take(MAX_ERROR_CHARS).collect();
    shortened.push_str("...");
    shortened
}

/// Returns the admin site page of the alert's run, or of its database for RPO alerts.
pub fn link(site_url: Option<&str>, alert: &AlertRow) -> Option<String> {
    let base = site_url?;
    Some(match alert.run_id {
        Some(run_id) => format!("{base}/runs/{run_id}"),
        None => format!(
            "{base}/instances/{}/databases/{}",
            path_segment(&alert.instance),
            path_segment(&alert.database)
        ),
    })
}

/// Percent-encodes a URL path segment; database names may contain spaces and accents.
fn path_segment(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Returns the one-line subject of an alert, used as the e-mail subject and chat title.
pub fn subject(alert: &AlertRow) -> String {
    let what = match alert.event {
        AlertEvent::Failure => "backup failed",
        AlertEvent::Rpo => "RPO breached",
        AlertEvent::Recovery => "recovered",
    };
    format!(
        "[bakfleet] {what}: {} on {}",
        alert.database, alert.instance
    )
}

/// Builds the JSON body of a webhook POST in `format`.
pub fn webhook_body(
    format: WebhookFormat,
    alert: &AlertRow,
    site_url: Option<&str>,
) -> serde_json::Value {
    let link = link(site_url, alert);
    match format {
        WebhookFormat::Slack => {
            let mut text = alert.message.clone();
            if let Some(link) = &link {
                text.push_str(&format!("\n<{link}|Open in bakfleet>"));
            }
            json!({ "text": text })
        }
        WebhookFormat::Teams => {
            // An Office 365 connector MessageCard ("Legacy actionable message card
            // reference"): a title, the text and a button to the run.
            let colour = match alert.event {
                AlertEvent::Recovery => "2EB886",
                AlertEvent::Failure | AlertEvent::Rpo => "D40E0D",
            };
            let mut card = json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "themeColor": colour,
                "summary": subject(alert),
                "title": subject(alert),
                "text": alert.message,
            });
            if let Some(link) = link {
                card["potentialAction"] = json!([{
                    "@type": "OpenUri",
                    "name": "Open in bakfleet",
                    "targets": [{ "os": "default", "uri": link }],
                }]);
            }
            card
        }
        WebhookFormat::Json => {
            let payload = AlertPayload {
                event: alert.event.as_str(),
                instance: &alert.instance,
                database: &alert.database,
                backup_type: alert.backup_type.map(|kind| kind.as_str()),
                message: &alert.message,
                run_id: alert.run_id,
                link,
                at: alert
                    .created_at
                    .format(&Rfc3339)
                    .unwrap_or_else(|_| alert.created_at.to_string()),
                alert_id: alert.id,
            };
            serde_json::to_value(payload).unwrap_or_else(|_| json!({ "text": alert.message }))
        }
    }
}

/// Builds the plain-text body of an alert e-mail.
pub fn email_body(alert: &AlertRow, site_url: Option<&str>) -> String {
    let mut body = format!(
        "{}\n\nInstance: {}\nDatabase: {}\n",
        alert.message, alert.instance, alert.database
    );
    if let Some(backup_type) = alert.backup_type {
        body.push_str(&format!("Backup type: {backup_type}\n"));
    }
    if let Some(run_id) = alert.run_id {
        body.push_str(&format!("Run: {run_id}\n"));
    }
    if let Some(link) = link(site_url, alert) {
        body.push_str(&format!("\n{link}\n"));
    }
    body.push_str(
        "\n-- \nSent by bakfleet serve; alerts.min_interval sets how often it repeats.\n",
    );
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::BackupType;
    use time::macros::datetime;

    fn alert(run_id: Option<i64>) -> AlertRow {
        AlertRow {
            id: 7,
            created_at: datetime!(2026-01-02 03:04:05 UTC),
            event: AlertEvent::Failure,
            instance: "sales-prod".to_string(),
            database: "Ventes d'été".to_string(),
            backup_type: Some(BackupType::Full),
            run_id,
            message: "full backup failed".to_string(),
        }
    }

    #[test]
    fn link_points_at_run_page() {
        let link = link(Some("https://backup.example"), &alert(Some(42)));
        assert_eq!(link.as_deref(), Some("https://backup.example/runs/42"));
    }

    #[test]
    fn link_encodes_database_name() {
        let link = link(Some("https://backup.example"), &alert(None)).unwrap();
        assert_eq!(
            link,
            "https://backup.example/instances/sales-prod/databases/Ventes%20d%27%C3%A9t%C3%A9"
        );
    }

    #[test]
    fn json_body_has_documented_fields() {
        let body = webhook_body(WebhookFormat::Json, &alert(Some(42)), None);
        assert_eq!(body["event"], "failure");
        assert_eq!(body["instance"], "sales-prod");
        assert_eq!(body["backup_type"], "full");
        assert_eq!(body["run_id"], 42);
        assert_eq!(body["link"], serde_json::Value::Null);
        assert_eq!(body["at"], "2026-01-02T03:04:05Z");
    }

    #[test]
    fn slack_body_is_text_only() {
        let body = webhook_body(WebhookFormat::Slack, &alert(Some(1)), None);
        assert_eq!(body, json!({ "text": "full backup failed" }));
    }

    #[test]
    fn short_error_keeps_first_line() {
        let error = format!("first {}\nsecond", "x".repeat(600));
        let short = short_error(&error);
        assert!(short.starts_with("first "));
        assert!(short.ends_with("..."));
        assert!(!short.contains("second"));
    }
}
