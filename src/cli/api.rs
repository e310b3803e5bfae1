//! `bakfleet api`: descriptions of the JSON API, such as its OpenAPI document.

use std::process::ExitCode;

/// Subcommands of `bakfleet api`.
#[derive(Debug, clap::Subcommand)]
pub enum ApiOutput {
    /// Print the OpenAPI 3.1 document of /api/v1 as JSON (committed as docs/openapi.json).
    Openapi,
}

/// Prints the requested description to stdout.
pub(crate) fn execute(output: ApiOutput) -> anyhow::Result<ExitCode> {
    match output {
        ApiOutput::Openapi => print!("{}", crate::web::api::openapi_json()),
    }
    Ok(ExitCode::SUCCESS)
}
