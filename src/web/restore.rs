//! The restore-plan page: a form with a target time, and the chain and T-SQL script for
//! it. Read-only: a GET with query parameters, nothing changes state.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use serde::Deserialize;

use super::error::WebError;
use super::Site;
use crate::chain::Target;
use crate::restore_plan::{build_plan, parse_target_time, PlanError};
use crate::restore_script::ScriptOptions;

/// The form fields; empty fields count as left out.
#[derive(Debug, Default, Deserialize)]
pub(super) struct PlanQuery {
    at: Option<String>,
    #[serde(rename = "as")]
    restore_as: Option<String>,
    move_to: Option<String>,
}

fn filled(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_string)
}

pub(super) async fn restore_plan(
    State(site): State<Site>,
    Path((instance, database)): Path<(String, String)>,
    Query(query): Query<PlanQuery>,
) -> Result<(StatusCode, Html<String>), WebError> {
    let at = filled(&query.at);
    let options = ScriptOptions {
        restore_as: filled(&query.restore_as),
        move_to: filled(&query.move_to),
        replace: false,
    };

    let target = match at.as_deref().map(parse_target_time) {
        None => Ok(Target::Latest),
        Some(Ok(at)) => Ok(Target::At(at)),
        Some(Err(message)) => Err(message),
    };
    // Without the store, FROM DISK names store paths relative to its root.
    let store_root = match &site.state.store {
        Some(store) => store.root(),
        None => std::path::Path::new(""),
    };
    let (plan, error) = match target {
        Err(message) => (None, Some(message)),
        Ok(target) => {
            let catalog = &site.state.catalog;
            match build_plan(catalog, store_root, &instance, &database, target, &options).await {
                Ok(plan) => (Some(plan), None),
                Err(PlanError::Catalog(error)) => return Err(WebError::Catalog(error)),
                Err(error) => (None, Some(error.to_string())),
            }
        }
    };

    // The page explains a time outside the windows or an unknown database, and the status
    // lets scripts and monitors see that no plan came back.
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let page = site.render(
        "restore.html",
        minijinja::context! {
            instance,
            database,
            at,
            restore_as => options.restore_as,
            move_to => options.move_to,
            sql => plan.as_ref().map(|plan| plan.script.to_sql()),
            plan,
            error,
        },
    )?;
    Ok((status, page))
}
