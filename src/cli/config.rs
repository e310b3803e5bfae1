//! `bakfleet config`: the fleet.toml reference as Markdown or as a JSON schema, both
//! generated from the doc comments of the configuration types.

use std::process::ExitCode;

use crate::fleet::reference;

/// Document that `bakfleet config` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Subcommand)]
pub enum ConfigOutput {
    /// Print docs/configuration.md: one section per table with each key's type, default,
    /// allowed values and description.
    Reference,
    /// Print the JSON schema (draft 2020-12) of fleet.toml.
    Schema,
}

/// Prints the requested document to stdout.
///
/// # Errors
/// The schema cannot be serialized, which would be a bug.
pub(crate) fn execute(output: ConfigOutput) -> anyhow::Result<ExitCode> {
    match output {
        ConfigOutput::Reference => print!("{}", reference::markdown()),
        ConfigOutput::Schema => {
            let schema = serde_json::to_string_pretty(&reference::json_schema())?;
            println!("{schema}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
