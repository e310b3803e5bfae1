//! `[alerts]`: webhook and e-mail targets of alerts, the events that send one, and the
//! rate limit per database and event.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use toml::Spanned;

use super::error::Diagnostics;
use super::policy::parse_duration;
use super::raw::{RawAlerts, RawEmail, RawWebhook};
use super::secrets::{password_ref, SecretRef};
use super::value;

/// Default of `alerts.min_interval`.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(3600);

/// Default of `alerts.check_interval_secs`.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// An event that sends an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlertEvent {
    /// A finished run failed.
    Failure,
    /// A database's protection state became late or missing.
    Rpo,
    /// A good backup or state followed a failure or RPO alert.
    Recovery,
}

impl AlertEvent {
    pub const ALL: [AlertEvent; 3] = [AlertEvent::Failure, AlertEvent::Rpo, AlertEvent::Recovery];

    /// Returns the name used in fleet.toml and in the catalogue.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Failure => "failure",
            AlertEvent::Rpo => "rpo",
            AlertEvent::Recovery => "recovery",
        }
    }
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertEvent {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        AlertEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == text)
            .ok_or(())
    }
}

/// Body format of a webhook POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"text": ...}`, which Slack incoming webhooks and Mattermost accept.
    Slack,
    /// An Office 365 connector MessageCard for Microsoft Teams.
    Teams,
    /// bakfleet's own object, documented in docs/operations.md.
    Json,
}

/// One `[[alerts.webhook]]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The target URL. Chat webhook URLs often carry a token in the path, so messages and
    /// logs name the webhook with [`Webhook::describe`] instead.
    pub url: String,
    pub format: WebhookFormat,
    /// Extra headers by name, each with the environment variable that contains its value.
    pub headers: Vec<(String, SecretRef)>,
}

impl Webhook {
    /// Returns the URL's scheme and host, a name for the webhook that leaves out a token
    /// in the path or query.
    pub fn describe(&self) -> String {
        match reqwest::Url::parse(&self.url) {
            Ok(url) => format!(
                "{}://{}/...",
                url.scheme(),
                url.host_str().unwrap_or("(no host)")
            ),
            Err(_) => "(invalid URL)".to_string(),
        }
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.describe())
            .field("format", &self.format)
            .field("headers", &self.headers)
            .finish()
    }
}

/// Encryption of the SMTP connection; plain SMTP is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP upgraded with STARTTLS, which must succeed (RFC 3207).
    StartTls,
    /// TLS from the first byte (RFC 8314).
    Implicit,
}

/// `[alerts.email]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// SMTP login, with the source of its password; `None` sends without a login.
    pub login: Option<(String, SecretRef)>,
    pub from: String,
    pub to: Vec<String>,
    /// CA certificates the server's certificate must chain to; `None` uses the system's.
    pub ca_file: Option<PathBuf>,
}

/// The checked `[alerts]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alerts {
    pub events: BTreeSet<AlertEvent>,
    /// Minimum time between two alerts of one event for one database.
    pub min_interval: Duration,
    /// Time between two passes of the evaluator in `serve`.
    pub check_interval: Duration,
    /// Base URL of the admin site for links in alerts, without a trailing `/`.
    pub site_url: Option<String>,
    pub webhooks: Vec<Webhook>,
    pub email: Option<Email>,
}

impl Alerts {
    /// Returns whether alerts of `event` are sent.
    pub fn sends(&self, event: AlertEvent) -> bool {
        self.events.contains(&event)
    }

    /// Reads `[alerts]`; relative paths are joined to `base_dir`.
    pub(crate) fn from_raw(
        raw: &Spanned<RawAlerts>,
        base_dir: &Path,
        has_secrets_file: bool,
        diagnostics: &mut Diagnostics,
    ) -> Alerts {
        let table_offset = raw.span().start;
        let raw = raw.get_ref();
        let mut alerts = Alerts {
            events: AlertEvent::ALL.into_iter().collect(),
            min_interval: DEFAULT_MIN_INTERVAL,
            check_interval: DEFAULT_CHECK_INTERVAL,
            site_url: None,
            webhooks: Vec::new(),
            email: None,
        };
        if let Some(events) = &raw.events {
            alerts.events = read_events(events, diagnostics);
        }
        if let Some(interval) = &raw.min_interval {
            let key = "alerts.min_interval";
            alerts.min_interval =
                duration(diagnostics, key, interval).unwrap_or(DEFAULT_MIN_INTERVAL);
        }
        if let Some(seconds) = &raw.check_interval_secs {
            let key = "alerts.check_interval_secs";
            let interval = value::seconds(diagnostics, key, seconds, 5);
            alerts.check_interval = interval.unwrap_or(DEFAULT_CHECK_INTERVAL);
        }
        if let Some(url) = &raw.site_url {
            alerts.site_url = http_url(diagnostics, "alerts.site_url", url)
                .map(|url| url.trim_end_matches('/').to_string());
        }
        for (index, webhook) in raw.webhook.iter().enumerate() {
            let prefix = format!("alerts.webhook[{index}].");
            if let Some(webhook) = read_webhook(webhook.get_ref(), &prefix, diagnostics) {
                alerts.webhooks.push(webhook);
            }
        }
        if let Some(email) = &raw.email {
            let offset = email.span().start;
            let context = EmailContext {
                base_dir,
                has_secrets_file,
                offset,
            };
            alerts.email = read_email(email.get_ref(), &context, diagnostics);
        }
        if alerts.webhooks.is_empty() && raw.email.is_none() {
            let message =
                "[alerts] names no webhook and no e-mail, so no alert is sent".to_string();
            let hint = "add an [[alerts.webhook]] or an [alerts.email] table, or remove [alerts]";
            diagnostics.report(table_offset, "alerts", message, hint);
        }
        alerts
    }
}

fn read_events(events: &[Spanned<String>], diagnostics: &mut Diagnostics) -> BTreeSet<AlertEvent> {
    let mut found = BTreeSet::new();
    for event in events {
        match event.get_ref().parse::<AlertEvent>() {
            Ok(event) => {
                found.insert(event);
            }
            Err(()) => {
                let message = format!("unknown alert event {:?}", event.get_ref());
                let hint = "use \"failure\", \"rpo\" or \"recovery\"";
                diagnostics.report(event.span().start, "alerts.events", message, hint);
            }
        }
    }
    found
}

fn duration(diagnostics: &mut Diagnostics, key: &str, text: &Spanned<String>) -> Option<Duration> {
    match parse_duration(text.get_ref()) {
        Ok(duration) => Some(duration),
        Err(problem) => {
            let message = format!("invalid duration {:?}: {problem}", text.get_ref());
            let hint = "write a number and a unit, such as \"30m\" or \"1h\"";
            diagnostics.report(text.span().start, key, message, hint);
            None
        }
    }
}

/// Returns the URL when it parses with an `http` or `https` scheme, or reports `key`. The
/// message leaves the URL out because a webhook URL may carry a token.
fn http_url(diagnostics: &mut Diagnostics, key: &str, text: &Spanned<String>) -> Option<String> {
    let problem = match reqwest::Url::parse(text.get_ref()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
            return Some(text.get_ref().clone());
        }
        Ok(url) => format!("URL scheme {:?} is not http or https", url.scheme()),
        Err(error) => format!("invalid URL: {error}"),
    };
    let hint = "write an absolute URL such as \"https://host.example/path\"";
    diagnostics.report(text.span().start, key, problem, hint);
    None
}

fn read_webhook(raw: &RawWebhook, prefix: &str, diagnostics: &mut Diagnostics) -> Option<Webhook> {
    let url = http_url(diagnostics, &format!("{prefix}url"), &raw.url);
    let format = match &raw.format {
        None => Some(WebhookFormat::Json),
        Some(format) => match format.get_ref().as_str() {
            "slack" => Some(WebhookFormat::Slack),
            "teams" => Some(WebhookFormat::Teams),
            "json" => Some(WebhookFormat::Json),
            other => {
                let message = format!("unknown webhook format {other:?}");
                let hint = "use \"slack\", \"teams\" or \"json\"";
                let key = format!("{prefix}format");
                diagnostics.report(format.span().start, &key, message, hint);
                None
            }
        },
    };
    let mut headers = Vec::new();
    for (name, variable) in &raw.headers_env {
        let key = format!("{prefix}headers_env.{}", name.get_ref());
        if reqwest::header::HeaderName::from_bytes(name.get_ref().as_bytes()).is_err() {
            let message = format!("invalid HTTP header name {:?}", name.get_ref());
            let hint = "use a token of letters, digits and `-`, such as \"Authorization\"";
            diagnostics.report(name.span().start, &key, message, hint);
            continue;
        }
        if let Some(variable) = value::text(diagnostics, &key, variable) {
            headers.push((name.get_ref().clone(), SecretRef::Env(variable)));
        }
    }
    Some(Webhook {
        url: url?,
        format: format?,
        headers,
    })
}

struct EmailContext<'a> {
    base_dir: &'a Path,
    has_secrets_file: bool,
    /// Start of the `[alerts.email]` table, for errors about a key it lacks.
    offset: usize,
}

fn read_email(
    raw: &RawEmail,
    context: &EmailContext<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Email> {
    let prefix = "alerts.email.";
    let host = value::text(diagnostics, "alerts.email.host", &raw.host);
    let tls = match &raw.tls {
        None => Some(SmtpTls::StartTls),
        Some(tls) => match tls.get_ref().as_str() {
            "starttls" => Some(SmtpTls::StartTls),
            "implicit" => Some(SmtpTls::Implicit),
            other => {
                let message = format!("unknown SMTP TLS mode {other:?}");
                let hint = "use \"starttls\" (port 587) or \"implicit\" (port 465); plain SMTP is not supported";
                diagnostics.report(tls.span().start, "alerts.email.tls", message, hint);
                None
            }
        },
    };
    let default_port = match tls {
        Some(SmtpTls::Implicit) => 465,
        _ => 587,
    };
    let port = match &raw.port {
        Some(port) => value::port(diagnostics, "alerts.email.port", port),
        None => Some(default_port),
    };

    let login = read_login(raw, context, diagnostics);
    let from = mailbox(diagnostics, "alerts.email.from", &raw.from);
    let mut to = Vec::new();
    for address in raw.to.get_ref() {
        if let Some(address) = mailbox(diagnostics, "alerts.email.to", address) {
            to.push(address);
        }
    }
    if raw.to.get_ref().is_empty() {
        let message = "no recipient is set".to_string();
        let hint = "list one or more addresses, such as to = [\"dba@corp.example\"]";
        diagnostics.report(raw.to.span().start, "alerts.email.to", message, hint);
    }

    let ca_file = raw.ca_file.as_ref().and_then(|path| {
        value::local_path(
            diagnostics,
            &format!("{prefix}ca_file"),
            path,
            context.base_dir,
        )
    });
    Some(Email {
        host: host?,
        port: port?,
        tls: tls?,
        login: login?,
        from: from?,
        to,
        ca_file,
    })
}

/// Reads `user` with its password source. The outer `Option` is `None` after an error.
fn read_login(
    raw: &RawEmail,
    context: &EmailContext<'_>,
    diagnostics: &mut Diagnostics,
) -> Option<Option<(String, SecretRef)>> {
    let sources = (raw.password_env.as_ref(), raw.password_secret.as_ref());
    let Some(user) = &raw.user else {
        if let Some(source) = sources.0.or(sources.1) {
            let message = "a password is set but no user".to_string();
            let hint = "set alerts.email.user, or remove the password key";
            diagnostics.report(source.span().start, "alerts.email.user", message, hint);
            return None;
        }
        return Some(None);
    };
    let user = value::text(diagnostics, "alerts.email.user", user);
    let password = password_ref(
        diagnostics,
        "alerts.email.",
        context.offset,
        sources,
        context.has_secrets_file,
    );
    Some(Some((user?, password?)))
}

/// Returns the address when it parses as an RFC 5322 mailbox, or reports `key`.
fn mailbox(diagnostics: &mut Diagnostics, key: &str, text: &Spanned<String>) -> Option<String> {
    match text.get_ref().parse::<lettre::message::Mailbox>() {
        Ok(_) => Some(text.get_ref().clone()),
        Err(error) => {
            let message = format!("invalid e-mail address {:?}: {error}", text.get_ref());
            let hint =
                "write an address such as \"dba@corp.example\" or \"DBA <dba@corp.example>\"";
            diagnostics.report(text.span().start, key, message, hint);
            None
        }
    }
}
