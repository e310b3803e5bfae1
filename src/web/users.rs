//! The users page for admins: list, add, remove and reset passwords, each audited.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use time::OffsetDateTime;

use super::audit;
use super::auth::CurrentUser;
use super::error::WebError;
use super::Site;
use crate::account::{self, Role};
use crate::catalog::{AuditOutcome, CatalogError};

#[derive(Debug, Deserialize)]
pub(super) struct AddUserForm {
    name: String,
    role: String,
    password: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct PasswordForm {
    password: String,
}

/// Lists the users with forms to add, remove and reset them.
pub(super) async fn users_page(State(site): State<Site>) -> Result<Html<String>, WebError> {
    render_users(&site, None).await
}

async fn render_users(site: &Site, error: Option<String>) -> Result<Html<String>, WebError> {
    let users = site.state.catalog.users().await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
    site.render("users.html", minijinja::context! { users, roles, error })
}

/// Shows the users page again with `message`, with status 400.
async fn rejected(site: &Site, message: String) -> Result<Response, WebError> {
    let page = render_users(site, Some(message)).await?;
    Ok((StatusCode::BAD_REQUEST, page).into_response())
}

/// Adds a user.
pub(super) async fn add_user(
    State(site): State<Site>,
    Extension(admin): Extension<CurrentUser>,
    Form(form): Form<AddUserForm>,
) -> Result<Response, WebError> {
    let checked = form.role.parse::<Role>().and_then(|role| {
        account::check_name(&form.name)?;
        account::check_password(&form.password)?;
        Ok(role)
    });
    let role = match checked {
        Ok(role) => role,
        Err(error) => return rejected(&site, error.to_string()).await,
    };

    let hash = account::hash_password(&form.password)
        .map_err(|error| WebError::Internal(error.to_string()))?;
    let now = OffsetDateTime::now_utc();
    match site
        .state
        .catalog
        .add_user(&form.name, role, &hash, now)
        .await
    {
        Ok(_) => {}
        Err(error @ CatalogError::UserExists { .. }) => {
            return rejected(&site, error.to_string()).await
        }
        Err(error) => return Err(error.into()),
    }

    audit::record(
        &site,
        &admin.name,
        "user_add",
        Some(form.name.clone()),
        AuditOutcome::Ok,
    )
    .client(&admin.client)
    .detail(format!("role {role}"))
    .save()
    .await;
    Ok(Redirect::to("/users").into_response())
}

/// Removes a user and its sessions; the last admin stays, so that someone can still
/// manage users.
pub(super) async fn remove_user(
    State(site): State<Site>,
    Extension(admin): Extension<CurrentUser>,
    Path(name): Path<String>,
) -> Result<Response, WebError> {
    let catalog = &site.state.catalog;
    let Some((user, _)) = catalog.user_with_hash(&name).await? else {
        return Err(WebError::NotFound(format!("No user {name:?} exists.")));
    };
    if user.role == Role::Admin && catalog.admin_count().await? <= 1 {
        let message = format!(
            "User {name} is the last admin and stays, so that someone can manage users; \
             add another admin first."
        );
        return rejected(&site, message).await;
    }
    catalog.remove_user(&name).await?;
    audit::record(
        &site,
        &admin.name,
        "user_remove",
        Some(name),
        AuditOutcome::Ok,
    )
    .client(&admin.client)
    .save()
    .await;
    Ok(Redirect::to("/users").into_response())
}

/// Sets a new password for a user and ends its sessions.
pub(super) async fn reset_password(
    State(site): State<Site>,
    Extension(admin): Extension<CurrentUser>,
    Path(name): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    if let Err(error) = account::check_password(&form.password) {
        return rejected(&site, error.to_string()).await;
    }
    let hash = account::hash_password(&form.password)
        .map_err(|error| WebError::Internal(error.to_string()))?;
    let now = OffsetDateTime::now_utc();
    if !site.state.catalog.set_password(&name, &hash, now).await? {
        return Err(WebError::NotFound(format!("No user {name:?} exists.")));
    }
    audit::record(
        &site,
        &admin.name,
        "user_password",
        Some(name),
        AuditOutcome::Ok,
    )
    .client(&admin.client)
    .save()
    .await;
    Ok(Redirect::to("/users").into_response())
}
