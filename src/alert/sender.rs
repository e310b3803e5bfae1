//! Delivery of recorded alerts: an HTTP POST per webhook and an e-mail over SMTP with TLS.
//! A failed delivery stays pending and is retried at the next pass.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use time::OffsetDateTime;

use super::message;
use super::AlertError;
use crate::catalog::{AlertRow, Catalog};
use crate::fleet::{Alerts, Email, Secrets, SmtpTls, Webhook};

/// Time allowed for one webhook POST, connect included.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for each SMTP command; lettre applies it to every read and write.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// Attempts after which a delivery is given up and marked failed. At the default pass
/// interval of 30 s this is about an hour and a half of retries.
pub const MAX_ATTEMPTS: u32 = 180;

/// The target name of the e-mail in the catalogue.
pub const EMAIL_TARGET: &str = "email";

/// Returns the target names of `alerts`, as the catalogue stores them.
pub fn target_names(alerts: &Alerts) -> Vec<String> {
    let mut targets: Vec<String> = (0..alerts.webhooks.len())
        .map(|index| format!("webhook:{index}"))
        .collect();
    if alerts.email.is_some() {
        targets.push(EMAIL_TARGET.to_string());
    }
    targets
}

/// Counts of one delivery round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliverySummary {
    pub sent: usize,
    pub failed: usize,
}

/// Sends every pending delivery once. A failure is logged and stored on the delivery,
/// never returned, so that one unreachable target does not hold back the others.
///
/// # Errors
/// Only catalogue errors.
pub async fn deliver_pending(
    catalog: &Catalog,
    alerts: &Alerts,
    secrets: &Secrets,
    now: OffsetDateTime,
) -> Result<DeliverySummary, AlertError> {
    let mut summary = DeliverySummary::default();
    let pending = catalog.pending_deliveries().await?;
    if pending.is_empty() {
        return Ok(summary);
    }
    let client = http_client()?;
    for delivery in pending {
        let alert = &delivery.alert;
        let result = send(&client, alerts, secrets, &delivery.target, alert).await;
        match result {
            Ok(()) => {
                catalog
                    .mark_delivery_sent(alert.id, &delivery.target, now)
                    .await?;
                tracing::info!(
                    instance = %alert.instance,
                    database = %alert.database,
                    alert_id = alert.id,
                    target = %describe_target(alerts, &delivery.target),
                    "alert sent"
                );
                summary.sent += 1;
            }
            Err(error) => {
                let attempts = delivery.attempts + 1;
                let give_up = attempts >= MAX_ATTEMPTS;
                let text = error.to_string();
                catalog
                    .mark_delivery_failed(alert.id, &delivery.target, &text, give_up)
                    .await?;
                tracing::error!(
                    instance = %alert.instance,
                    database = %alert.database,
                    alert_id = alert.id,
                    target = %describe_target(alerts, &delivery.target),
                    attempts,
                    give_up,
                    error = %text,
                    "alert send failed; it is retried at the next pass unless given up"
                );
                summary.failed += 1;
            }
        }
    }
    Ok(summary)
}

/// Names a target for logs: the webhook's scheme and host, or the SMTP server.
pub fn describe_target(alerts: &Alerts, target: &str) -> String {
    if target == EMAIL_TARGET {
        return match &alerts.email {
            Some(email) => format!("e-mail via {}:{}", email.host, email.port),
            None => "e-mail (no longer configured)".to_string(),
        };
    }
    match webhook_of(alerts, target) {
        Some(webhook) => format!("webhook {}", webhook.describe()),
        None => format!("{target} (no longer configured)"),
    }
}

fn webhook_of<'a>(alerts: &'a Alerts, target: &str) -> Option<&'a Webhook> {
    let index: usize = target.strip_prefix("webhook:")?.parse().ok()?;
    alerts.webhooks.get(index)
}

fn http_client() -> Result<reqwest::Client, AlertError> {
    reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .connect_timeout(WEBHOOK_TIMEOUT)
        // A redirect could carry the alert, and its headers, to another host.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|error| AlertError::Client {
            reason: error.without_url().to_string(),
        })
}

async fn send(
    client: &reqwest::Client,
    alerts: &Alerts,
    secrets: &Secrets,
    target: &str,
    alert: &AlertRow,
) -> Result<(), AlertError> {
    if target == EMAIL_TARGET {
        let Some(email) = &alerts.email else {
            return Err(AlertError::TargetRemoved {
                target: target.to_string(),
            });
        };
        return send_email(email, secrets, alert, alerts.site_url.as_deref()).await;
    }
    let Some(webhook) = webhook_of(alerts, target) else {
        return Err(AlertError::TargetRemoved {
            target: target.to_string(),
        });
    };
    post_webhook(client, webhook, secrets, alert, alerts.site_url.as_deref()).await
}

/// POSTs the alert to one webhook; any 2xx status is success.
pub async fn post_webhook(
    client: &reqwest::Client,
    webhook: &Webhook,
    secrets: &Secrets,
    alert: &AlertRow,
    site_url: Option<&str>,
) -> Result<(), AlertError> {
    let body = message::webhook_body(webhook.format, alert, site_url).to_string();
    let mut request = client
        .post(&webhook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, source) in &webhook.headers {
        let context = format!("alert webhook header {name}");
        let value = secrets.resolve(source, &context)?;
        request = request.header(name.as_str(), value.expose());
    }
    let failed = |reason: String| AlertError::Webhook {
        webhook: webhook.describe(),
        reason,
    };
    // `without_url` keeps a token in the URL's path or query out of the message.
    let response = request
        .send()
        .await
        .map_err(|error| failed(error.without_url().to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server returned HTTP {status}")));
    }
    Ok(())
}

/// Sends the alert as a plain-text e-mail to every recipient.
pub async fn send_email(
    email: &Email,
    secrets: &Secrets,
    alert: &AlertRow,
    site_url: Option<&str>,
) -> Result<(), AlertError> {
    let transport = smtp_transport(email, secrets)?;
    let failed = |reason: String| AlertError::Email {
        server: format!("{}:{}", email.host, email.port),
        reason,
    };
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|error| failed(format!("invalid sender address: {error}")))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(message::subject(alert))
        .header(ContentType::TEXT_PLAIN);
    for recipient in &email.to {
        let mailbox: Mailbox = recipient
            .parse()
            .map_err(|error| failed(format!("invalid recipient {recipient:?}: {error}")))?;
        builder = builder.to(mailbox);
    }
    let body = message::email_body(alert, site_url);
    let message = builder
        .body(body)
        .map_err(|error| failed(format!("cannot build the message: {error}")))?;
    transport
        .send(message)
        .await
        .map_err(|error| failed(error.to_string()))?;
    Ok(())
}

/// Connects to the SMTP server, upgrades to TLS, logs in when a user is set, and closes
/// the session, for `bakfleet check --connect`.
pub async fn test_smtp(email: &Email, secrets: &Secrets) -> Result<(), AlertError> {
    let transport = smtp_transport(email, secrets)?;
    let connected = transport
        .test_connection()
        .await
        .map_err(|error| AlertError::Email {
            server: format!("{}:{}", email.host, email.port),
            reason: error.to_string(),
        })?;
    if !connected {
        return Err(AlertError::Email {
            server: format!("{}:{}", email.host, email.port),
            reason: "the server did not accept the session".to_string(),
        });
    }
    Ok(())
}

fn smtp_transport(
    email: &Email,
    secrets: &Secrets,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, AlertError> {
    let server = format!("{}:{}", email.host, email.port);
    let tls_failed = |reason: String| AlertError::Email {
        server: server.clone(),
        reason,
    };
    let mut parameters = TlsParameters::builder(email.host.clone());
    if let Some(path) = &email.ca_file {
        let pem = std::fs::read(path).map_err(|error| {
            tls_failed(format!("cannot read ca_file {}: {error}", path.display()))
        })?;
        let certificates = Certificate::from_pem(&pem).map_err(|error| {
            tls_failed(format!(
                "invalid PEM in ca_file {}: {error}",
                path.display()
            ))
        })?;
        parameters = parameters
            .certificate_store(CertificateStore::None)
            .add_root_certificate(certificates);
    }
    let parameters = parameters
        .build_rustls()
        .map_err(|error| tls_failed(format!("invalid TLS settings: {error}")))?;
    let tls = match email.tls {
        SmtpTls::StartTls => Tls::Required(parameters),
        SmtpTls::Implicit => Tls::Wrapper(parameters),
    };
    // The builder takes the host as given; TLS is required in both modes, so "dangerous"
    // only means that lettre's default port and TLS choice are replaced by ours.
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(email.host.as_str())
        .port(email.port)
        .tls(tls)
        .timeout(Some(SMTP_TIMEOUT));
    if let Some((user, source)) = &email.login {
        let password = secrets.resolve(source, "alerts.email password")?;
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    Ok(builder.build())
}
