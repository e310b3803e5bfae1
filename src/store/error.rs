//! Errors of the store, each naming the path concerned.

use std::path::PathBuf;

/// A store operation that failed, with the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open store root {path}: {source}; check that the directory exists or can be created and is writable")]
    OpenRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid store path {rel_path:?}: {reason}")]
    InvalidPath { rel_path: String, reason: String },
    #[error("cannot create store directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create temp file {path}: {source}")]
    CreateTemp {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write temp file {path}: {source}; check free space in the store")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot flush {path} to disk: {source}")]
    Sync {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store file {path} already exists; the store never replaces a file, so remove it or choose another name")]
    AlreadyExists { path: PathBuf },
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read store file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list store directory {path}: {source}")]
    Scan {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove partial file {path}: {source}")]
    RemovePartial {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store task failed: {0}")]
    Task(String),
}
