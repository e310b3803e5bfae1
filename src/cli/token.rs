//! `bakfleet token`: bearer tokens of the JSON API, issued on the command line so that
//! the secret is printed once to the operator and never stored.

use std::path::Path;
use std::process::ExitCode;

use time::OffsetDateTime;

use crate::account::Role;
use crate::catalog::{AuditOutcome, Catalog, NewAuditEntry};
use crate::fleet::Fleet;
use crate::token;

/// Subcommands of `bakfleet token`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Creates a token and prints it once; the catalogue keeps only its SHA-256.
    Add {
        /// Name of the token, which the audit log shows as the actor.
        name: String,
        /// Role of the token: viewer reads, operator also runs and verifies backups,
        /// admin may call every endpoint.
        #[arg(long)]
        role: Role,
        /// Days until the token expires; without it the token never expires.
        #[arg(long, value_name = "DAYS")]
        expires: Option<u32>,
    },
    /// Lists tokens with role, creation, last use and expiry, never the token itself.
    List,
    /// Removes a token; requests with it get 401 from then on.
    Remove { name: String },
}

/// Runs one `bakfleet token` command against the fleet file's catalogue.
pub(crate) async fn execute(fleet_path: &Path, command: TokenCommand) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open(&fleet.service.catalog).await?;
    let now = OffsetDateTime::now_utc();
    match command {
        TokenCommand::Add {
            name,
            role,
            expires,
        } => {
            let issued = token::issue(&catalog, &name, role, expires, now).await?;
            let detail = match expires {
                Some(days) => format!("role {role}, expires in {days} days"),
                None => format!("role {role}, no expiry"),
            };
            audit(&catalog, "token_add", &name, Some(detail)).await?;
            eprintln!(
                "added API token {name} with role {role}; it is shown only now, so store it \
                 in a secret store:"
            );
            println!("{}", issued.secret);
        }
        TokenCommand::List => {
            let tokens = catalog.tokens().await?;
            if tokens.is_empty() {
                println!("no API tokens yet; `bakfleet token add NAME --role viewer` adds one");
            }
            for row in tokens {
                println!(
                    "{:<24} {:<9} created {}  last used {}  expires {}",
                    row.name,
                    row.role,
                    row.created_at,
                    describe(row.last_used_at, "never"),
                    describe(row.expires_at, "never"),
                );
            }
        }
        TokenCommand::Remove { name } => {
            token::revoke(&catalog, &name).await?;
            audit(&catalog, "token_remove", &name, None).await?;
            println!("removed API token {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(at: Option<OffsetDateTime>, missing: &str) -> String {
    at.map_or_else(|| missing.to_string(), |at| at.to_string())
}

async fn audit(
    catalog: &Catalog,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let actor = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".to_string());
    let entry = NewAuditEntry {
        actor: format!("{actor} (command line)"),
        action: action.to_string(),
        target: Some(target.to_string()),
        outcome: AuditOutcome::Ok,
        client: None,
        detail,
        at: OffsetDateTime::now_utc(),
    };
    catalog.record_audit(&entry).await?;
    Ok(())
}
