//! `/healthz`: readiness of a serving process. It returns 200 only when the catalogue
//! responds to a query and the store is writable with enough free space, else 503.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::Site;
use crate::reload::FleetStatus;

/// Maximum time the catalogue query may take; a catalogue locked longer is not ready.
const CATALOGUE_TIMEOUT: Duration = Duration::from_secs(5);

/// The outcome of one check: `Ok` with a short detail, or `Err` with the reason.
type Check = Result<String, String>;

/// Returns 200 when every check passes and 503 otherwise. The plain-text body starts with
/// `ok` or `unavailable`, then one line per check, then the fleet file line.
pub(super) async fn healthz(State(site): State<Site>) -> Response {
    let mut checks = vec![("catalogue", catalogue(&site).await)];
    let status = site
        .state
        .fleet_status
        .as_ref()
        .map(|status| status.borrow().clone());
    if let Some(status) = &status {
        checks.push(("store", store(status).await));
    }

    let ready = checks.iter().all(|(_, check)| check.is_ok());
    let mut body = String::from(if ready { "ok\n" } else { "unavailable\n" });
    for (name, check) in &checks {
        match check {
            Ok(detail) => writeln!(body, "{name}: ok, {detail}"),
            Err(reason) => writeln!(body, "{name}: failed, {reason}"),
        }
        .expect("writing to a String cannot fail");
    }
    if let Some(status) = &status {
        body.push_str(&fleet_line(status));
    }
    if !ready {
        tracing::error!(report = %body.trim_end(), "health check failed");
    }

    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let content_type = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    (code, content_type, body).into_response()
}

async fn catalogue(site: &Site) -> Check {
    match tokio::time::timeout(CATALOGUE_TIMEOUT, site.state.catalog.ping()).await {
        Ok(Ok(())) => Ok("responds to queries".to_string()),
        Ok(Err(error)) => Err(format!("query failed: {error}")),
        Err(_) => Err(format!(
            "query timed out after {} s",
            CATALOGUE_TIMEOUT.as_secs()
        )),
    }
}

/// Checks that the store root is a folder, takes a new file, and has the free space that
/// `service.min_store_free_bytes` requires.
async fn store(status: &FleetStatus) -> Check {
    let root = status.store_dir.clone();
    let minimum = status.min_store_free_bytes;
    let checked = tokio::task::spawn_blocking(move || check_store(&root, minimum)).await;
    checked.unwrap_or_else(|error| Err(format!("the store check did not finish: {error}")))
}

fn check_store(root: &Path, minimum: u64) -> Check {
    let shown = root.display();
    match std::fs::metadata(root) {
        Ok(metadata) if metadata.is_dir() => {}
        Ok(_) => return Err(format!("{shown} is not a folder")),
        Err(error) => return Err(format!("{shown} cannot be read: {error}")),
    }
    write_probe(root).map_err(|error| format!("{shown} is not writable: {error}"))?;
    let free = free_bytes(root).map_err(|error| {
        format!("cannot read the free space of the file system of {shown}: {error}")
    })?;
    if free < minimum {
        return Err(format!(
            "{shown} has {free} bytes free, below service.min_store_free_bytes = {minimum}; \
             free space or prune backups"
        ));
    }
    Ok(format!("{shown} is writable and has {free} bytes free"))
}

/// Creates, writes and deletes a probe file in `root`. The name carries the PID and a
/// random part, so two processes or two requests never share one.
fn write_probe(root: &Path) -> std::io::Result<()> {
    use std::io::Write as _;

    let name = format!(
        ".bakfleet-healthz-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let path = root.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let written = file.write_all(b"bakfleet health probe\n");
    drop(file);
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// Returns the bytes an unprivileged user may still write on the file system of `path`.
pub(super) fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;

    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;
    let mut stats = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c_path` is a NUL-terminated string and `stats` is writable memory of the
    // type statvfs(3) fills in.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), stats.as_mut_ptr()) };
    if result != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled in the structure.
    let stats = unsafe { stats.assume_init() };
    #[allow(clippy::useless_conversion)] // The field widths differ between targets.
    let free = u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize));
    Ok(free)
}

/// Describes the fleet file in force: its revision, whether the file on disk is newer,
/// and the last rejected reload.
fn fleet_line(status: &FleetStatus) -> String {
    let loaded_at = status
        .loaded_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| status.loaded_at.to_string());
    let mut line = format!(
        "fleet: revision {} of {} in force since {loaded_at}",
        status.revision,
        status.path.display()
    );
    match status.file_is_in_force() {
        Ok(true) => line.push_str(", the newest file on disk"),
        Ok(false) => line.push_str(", but the file on disk differs from it"),
        Err(error) => {
            write!(line, ", but the file on disk cannot be read: {error}")
                .expect("writing to a String cannot fail");
        }
    }
    line.push('\n');
    if let Some(failure) = &status.last_error {
        let at = failure
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| failure.at.to_string());
        let message = failure.message.replace('\n', "\n  ");
        write!(line, "fleet: reload rejected at {at}:\n  {message}\n")
            .expect("writing to a String cannot fail");
    }
    line
}
