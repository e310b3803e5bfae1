//! Records the git revision the binary is built from, for `bakfleet --version`.
//!
//! Sets `BAKFLEET_GIT_REVISION` to the short commit id, with `-dirty` when tracked files
//! differ from that commit, or to `unknown` when the package is not a git checkout (a
//! source tarball) or git cannot be run.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=build.rs");
    let revision = match git_checkout_of(&manifest_dir) {
        Some(checkout) => {
            watch_git_state(&manifest_dir, &checkout);
            describe_revision(&manifest_dir).unwrap_or_else(|| "unknown".to_string())
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=BAKFLEET_GIT_REVISION={revision}");
}

/// The git folders of a checkout whose top level is the package folder itself. A package
/// unpacked inside some other repository is not its checkout, so it reports `unknown`.
struct Checkout {
    git_dir: PathBuf,
    common_dir: PathBuf,
}

fn git_checkout_of(manifest_dir: &Path) -> Option<Checkout> {
    let top_level = git(manifest_dir, &["rev-parse", "--show-toplevel"])?;
    let same_folder =
        Path::new(&top_level).canonicalize().ok()? == manifest_dir.canonicalize().ok()?;
    if !same_folder {
        return None;
    }
    let git_dir = git(manifest_dir, &["rev-parse", "--absolute-git-dir"])?;
    let common_dir = git(manifest_dir, &["rev-parse", "--git-common-dir"])?;
    Some(Checkout {
        git_dir: PathBuf::from(git_dir),
        common_dir: manifest_dir.join(common_dir),
    })
}

/// Asks cargo to run this script again when a commit, checkout or edit can change the
/// revision: HEAD, the index, the branch's ref, and the package's sources.
fn watch_git_state(manifest_dir: &Path, checkout: &Checkout) {
    let mut watched = vec![
        checkout.git_dir.join("HEAD"),
        checkout.git_dir.join("index"),
        checkout.common_dir.join("packed-refs"),
    ];
    if let Some(branch) = git(manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(checkout.common_dir.join(branch));
    }
    for folder in ["src", "Cargo.toml", "Cargo.lock", "migrations", "deploy"] {
        watched.push(manifest_dir.join(folder));
    }
    for path in watched.iter().filter(|path| path.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn describe_revision(manifest_dir: &Path) -> Option<String> {
    let commit = git(manifest_dir, &["rev-parse", "--short", "HEAD"])?;
    // `--porcelain` lists changed and untracked files; untracked ones are left out, so a
    // stray build output does not mark the build dirty.
    // `--no-optional-locks` keeps git from refreshing and rewriting the index, which this
    // script watches: a rewrite would make the next build run it, and rebuild, again.
    let status = git(
        manifest_dir,
        &[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )?;
    Some(if status.is_empty() {
        commit
    } else {
        format!("{commit}-dirty")
    })
}

/// Runs git in `dir` and returns its trimmed output, or `None` when it fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8(output.stdout).ok()?.trim().to_string())
}
