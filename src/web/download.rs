//! Backup downloads: the stored file streamed with single-range support, its SHA-256 in
//! `Digest` (RFC 3230) and `X-Checksum-SHA256`, and an audit entry per download. A backup
//! that failed verification gets 409 Conflict instead.

use std::io::SeekFrom;
use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::actions::backup_target;
use super::audit;
use super::auth::CurrentUser;
use super::error::WebError;
use super::Site;
use crate::catalog::{AuditOutcome, BackupRow, VerificationFailure};

/// Bytes read from the file per chunk of the response body.
const CHUNK_BYTES: usize = 256 * 1024;

/// A byte range of a file, both ends included, as `Range: bytes=` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteRange {
    first: u64,
    last: u64,
}

/// The part of the file that the `Range` header requests, read against its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeRequest {
    /// No header, or one this site serves as a whole file: several ranges or another
    /// unit, which RFC 9110 lets a server ignore.
    Whole,
    Partial(ByteRange),
    /// A valid range that starts past the end of the file: 416.
    Unsatisfiable,
}

/// Streams a stored backup file.
pub(super) async fn download(
    State(site): State<Site>,
    Extension(user): Extension<CurrentUser>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let not_found = || WebError::NotFound(format!("No backup with id {id:?} is in the catalogue."));
    let backup_id: i64 = id.parse().map_err(|_| not_found())?;
    let backup = site
        .state
        .catalog
        .backup(backup_id)
        .await?
        .ok_or_else(not_found)?;
    if let Some(failure) = site.state.catalog.verification_failure(backup_id).await? {
        return Err(failed_verification(&backup, &failure));
    }
    let path = stored_file(&site, &backup.store_path).await?;

    let mut file = tokio::fs::File::open(&path).await.map_err(|error| {
        WebError::NotFound(format!(
            "The file of backup {backup_id} cannot be opened: {error}; `bakfleet verify` checks the store."
        ))
    })?;
    let length = file
        .metadata()
        .await
        .map_err(|error| WebError::Internal(format!("cannot read {}: {error}", path.display())))?
        .len();

    let range = parse_range(&headers, length);
    let detail = match range {
        RangeRequest::Whole => format!("{length} bytes"),
        RangeRequest::Partial(range) => format!("bytes {}-{} of {length}", range.first, range.last),
        RangeRequest::Unsatisfiable => "unsatisfiable range".to_string(),
    };
    audit::record(
        &site,
        &user.name,
        "download",
        Some(backup_target(backup_id)),
        AuditOutcome::Ok,
    )
    .client(&user.client)
    .detail(detail)
    .save()
    .await;

    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("backup-{backup_id}.bak"));
    let mut response = match range {
        RangeRequest::Unsatisfiable => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            insert(
                &mut response,
                header::CONTENT_RANGE,
                &format!("bytes */{length}"),
            );
            return Ok(response);
        }
        RangeRequest::Whole => {
            let mut response = Response::new(file_body(file, length));
            insert(&mut response, header::CONTENT_LENGTH, &length.to_string());
            response
        }
        RangeRequest::Partial(range) => {
            file.seek(SeekFrom::Start(range.first))
                .await
                .map_err(|error| {
                    WebError::Internal(format!("cannot seek in {}: {error}", path.display()))
                })?;
            let count = range.last - range.first + 1;
            let mut response = Response::new(file_body(file, count));
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let content_range = format!("bytes {}-{}/{length}", range.first, range.last);
            insert(&mut response, header::CONTENT_RANGE, &content_range);
            insert(&mut response, header::CONTENT_LENGTH, &count.to_string());
            response
        }
    };

    insert(
        &mut response,
        header::CONTENT_TYPE,
        "application/octet-stream",
    );
    insert(&mut response, header::ACCEPT_RANGES, "bytes");
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file_name.replace(['"', '\\'], "_")
    );
    insert(&mut response, header::CONTENT_DISPOSITION, &disposition);
    insert(
        &mut response,
        header::ETAG,
        &format!("\"{}\"", backup.sha256),
    );
    // Both checksums describe the whole file, also in a 206 response.
    if let Ok(digest) = hex::decode(&backup.sha256) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(digest);
        insert(&mut response, "digest", &format!("sha-256={encoded}"));
    }
    insert(&mut response, "x-checksum-sha256", &backup.sha256);
    Ok(response)
}

/// Returns the 409 of a backup that failed verification. Its file no longer matches the
/// catalogued SHA-256 that the response would send as its digest, if it is there at all.
fn failed_verification(backup: &BackupRow, failure: &VerificationFailure) -> WebError {
    WebError::Conflict(format!(
        "Backup {} ({} backup of database [{}] on instance {}) failed verification on {}: {}. \
         Its file is not served. Put a good copy of the file back and verify the backup again, \
         which clears the mark, or take a new full backup.",
        backup.id,
        backup.backup_type,
        backup.database,
        backup.instance,
        crate::chain::format_time(&failure.found_at),
        failure.detail
    ))
}

/// Resolves a catalogued store path to a file inside the store root. Paths that leave
/// the root (`..`, links out of it) and files `bakfleet import` catalogued where they
/// were found get 404, so a download never reads a file outside the store.
async fn stored_file(site: &Site, store_path: &str) -> Result<PathBuf, WebError> {
    let Some(store) = &site.state.store else {
        return Err(WebError::Unavailable(
            "This process was started without the store, so it cannot serve backup files."
                .to_string(),
        ));
    };
    let outside = || {
        WebError::NotFound(format!(
            "The backup file {store_path} is outside the store, so the site does not serve it."
        ))
    };
    let relative = std::path::Path::new(store_path);
    let plain = relative
        .components()
        .all(|part| matches!(part, std::path::Component::Normal(_)));
    if relative.is_absolute() || !plain {
        return Err(outside());
    }
    let path = store.absolute(store_path);
    let root = tokio::fs::canonicalize(store.root())
        .await
        .map_err(|error| {
            WebError::Internal(format!(
                "cannot resolve the store root {}: {error}",
                store.root().display()
            ))
        })?;
    let resolved = tokio::fs::canonicalize(&path).await.map_err(|error| {
        WebError::NotFound(format!(
            "The backup file {} is missing: {error}; `bakfleet verify` checks the store.",
            path.display()
        ))
    })?;
    if !resolved.starts_with(&root) {
        return Err(outside());
    }
    Ok(resolved)
}

/// Reads the `Range` header: one `bytes=` range, whose forms are `a-b`, `a-` and `-n`.
fn parse_range(headers: &HeaderMap, length: u64) -> RangeRequest {
    let Some(value) = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
    else {
        return RangeRequest::Whole;
    };
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // A suffix: the last n bytes.
        let Ok(count) = last.parse::<u64>() else {
            return RangeRequest::Whole;
        };
        if count == 0 || length == 0 {
            return RangeRequest::Unsatisfiable;
        }
        let count = count.min(length);
        return RangeRequest::Partial(ByteRange {
            first: length - count,
            last: length - 1,
        });
    }
    let Ok(first) = first.parse::<u64>() else {
        return RangeRequest::Whole;
    };
    let last = if last.is_empty() {
        length.saturating_sub(1)
    } else {
        match last.parse::<u64>() {
            Ok(last) if last >= first => last.min(length.saturating_sub(1)),
            _ => return RangeRequest::Whole,
        }
    };
    if first >= length {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial(ByteRange { first, last })
}

/// Streams `count` bytes of `file` from its current position.
fn file_body(file: tokio::fs::File, count: u64) -> Body {
    let reader = file.take(count);
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buffer = vec![0u8; CHUNK_BYTES];
        match reader.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok::<_, std::io::Error>(buffer), reader))
            }
            Err(error) => {
                tracing::error!(%error, "backup download failed while reading the file");
                Some((Err(error), reader))
            }
        }
    });
    Body::from_stream(stream)
}

fn insert(response: &mut Response, name: impl header::IntoHeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &'static str, length: u64) -> RangeRequest {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_static(value));
        parse_range(&headers, length)
    }

    fn partial(first: u64, last: u64) -> RangeRequest {
        RangeRequest::Partial(ByteRange { first, last })
    }

    #[test]
    fn range_forms_parse() {
        assert_eq!(range("bytes=0-9", 100), partial(0, 9));
        assert_eq!(range("bytes=90-", 100), partial(90, 99));
        assert_eq!(range("bytes=-10", 100), partial(90, 99));
        assert_eq!(range("bytes=95-200", 100), partial(95, 99));
    }

    #[test]
    fn range_past_end_unsatisfiable() {
        assert_eq!(range("bytes=100-", 100), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn range_other_forms_serve_whole() {
        assert_eq!(range("bytes=0-1,5-6", 100), RangeRequest::Whole);
        assert_eq!(range("items=0-1", 100), RangeRequest::Whole);
        assert_eq!(range("bytes=9-2", 100), RangeRequest::Whole);
        assert_eq!(parse_range(&HeaderMap::new(), 100), RangeRequest::Whole);
    }
}
