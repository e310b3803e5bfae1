//! `bakfleet user`: admin site accounts, managed on the command line so that the first
//! admin exists before the site can be reached.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use time::OffsetDateTime;

use crate::account::{self, Role};
use crate::catalog::{AuditOutcome, Catalog, NewAuditEntry};
use crate::fleet::Fleet;

/// Subcommands of `bakfleet user`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Adds a user; the password comes from a prompt, or from stdin when it is not a
    /// terminal.
    Add {
        name: String,
        /// Role of the user: viewer reads, operator also runs and verifies backups,
        /// admin also manages users.
        #[arg(long)]
        role: Role,
    },
    /// Lists users with their role.
    List,
    /// Removes a user and ends its sessions.
    Remove { name: String },
    /// Sets a new password and ends the user's sessions.
    Passwd { name: String },
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &Role::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs one `bakfleet user` command against the fleet file's catalogue.
pub(crate) async fn execute(fleet_path: &Path, command: UserCommand) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::load(fleet_path)?;
    let catalog = Catalog::open(&fleet.service.catalog).await?;
    let now = OffsetDateTime::now_utc();
    match command {
        UserCommand::Add { name, role } => {
            account::check_name(&name)?;
            let password = read_new_password(&name)?;
            let hash = account::hash_password(&password)?;
            catalog.add_user(&name, role, &hash, now).await?;
            audit(&catalog, "user_add", &name, Some(format!("role {role}"))).await?;
            println!("added user {name} with role {role}");
        }
        UserCommand::List => {
            let users = catalog.users().await?;
            if users.is_empty() {
                println!("no users yet; `bakfleet user add NAME --role admin` adds the first");
            }
            for user in users {
                println!(
                    "{:<24} {:<9} created {}",
                    user.name,
                    user.role,
                    crate::chain::format_time(&user.created_at)
                );
            }
        }
        UserCommand::Remove { name } => {
            if !catalog.remove_user(&name).await? {
                anyhow::bail!("user {name:?} not found; `bakfleet user list` lists the users");
            }
            audit(&catalog, "user_remove", &name, None).await?;
            println!("removed user {name}");
        }
        UserCommand::Passwd { name } => {
            if catalog.user_with_hash(&name).await?.is_none() {
                anyhow::bail!("user {name:?} not found; `bakfleet user list` lists the users");
            }
            let password = read_new_password(&name)?;
            let hash = account::hash_password(&password)?;
            catalog.set_password(&name, &hash, now).await?;
            audit(&catalog, "user_password", &name, None).await?;
            println!("changed the password of user {name}; its sessions have ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a new password: from a prompt without echo, asked twice, on a terminal, or as
/// the first line of stdin otherwise. Never from an argument, which other local users
/// could read in the process list.
fn read_new_password(name: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))
            .context("cannot read the password from the terminal")?;
        let second = rpassword::prompt_password("repeat the password: ")
            .context("cannot read the password from the terminal")?;
        if first != second {
            anyhow::bail!("the two passwords differ; nothing was changed");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    account::check_password(&password)?;
    Ok(password)
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
