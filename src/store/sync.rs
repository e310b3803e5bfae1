//! Blocking file system steps that make store writes durable: directory creation with
//! `fsync` of each parent, rename without replace, and directory `fsync`.

use std::path::Path;

use super::StoreError;

/// Runs a blocking file system step on tokio's blocking pool.
pub(super) async fn run_blocking<T, F>(step: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(step)
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
}

/// Runs a blocking step on a new thread at the lowest CPU priority (nice 19), for work
/// that trails a transfer rather than paces it. A new thread per step, because a thread's
/// nice value cannot be lowered back without `CAP_SYS_NICE`, so a pool thread would keep
/// it for every later task.
pub(super) async fn run_behind<T, F>(step: F) -> Result<T, StoreError>
where
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    T: Send + 'static,
{
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bakfleet-behind".to_string())
        .spawn(move || {
            lower_thread_priority();
            // The receiver is gone only when the caller stopped waiting.
            let _ = sender.send(step());
        })
        .map_err(|error| StoreError::Task(format!("cannot start a thread: {error}")))?;
    receiver
        .await
        .map_err(|_| StoreError::Task("a background step panicked".to_string()))?
}

/// Sets the calling thread's nice value to 19. A failure is ignored: the step then runs at
/// the process's priority, which is slower at worst.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions, and on Linux setpriority with PRIO_PROCESS and
    // a thread id changes that thread only; neither touches memory of this process.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
    }
}

/// Asks the kernel to start writing `length` bytes of `file` from `offset` to disk,
/// without waiting. Dirty pages then go out while the transfer goes on, so the
/// `fdatasync` at commit waits for the last stretch only, not the whole file. It is a
/// hint: a failure is ignored, because commit's `fdatasync` still decides durability.
pub(super) fn start_writeback(file: &std::fs::File, offset: u64, length: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;

        let (Ok(offset), Ok(length)) = (i64::try_from(offset), i64::try_from(length)) else {
            return;
        };
        // SAFETY: sync_file_range on a descriptor borrowed for the call; it reads no
        // memory of this process.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset,
                length,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, length);
}

/// Creates each directory of `parents` below `root` that is missing, and `fsync`s the
/// directory that received the new entry, so a committed file's path survives a power loss.
pub(super) fn create_dirs_durably(root: &Path, parents: &[String]) -> Result<(), StoreError> {
    let mut dir = root.to_path_buf();
    for part in parents {
        let next = dir.join(part);
        match std::fs::create_dir(&next) {
            Ok(()) => sync_dir(&dir)?,
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                if !next.is_dir() {
                    return Err(StoreError::CreateDir {
                        path: next,
                        source: std::io::Error::new(
                            std::io::ErrorKind::NotADirectory,
                            "a file of this name exists where a directory is needed",
                        ),
                    });
                }
            }
            Err(source) => return Err(StoreError::CreateDir { path: next, source }),
        }
        dir = next;
    }
    Ok(())
}

/// `fsync`s a directory so that entries created or renamed in it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let sync_error = |source| StoreError::Sync {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(sync_error)
}

/// Renames `from` to `to`, failing with [`StoreError::AlreadyExists`] when `to` exists.
///
/// Uses `renameat2(RENAME_NOREPLACE)` on Linux. File systems without that flag (it
/// returns EINVAL) get a hard link followed by an unlink, which also fails on an
/// existing target.
pub(super) fn rename_no_replace(from: &Path, to: &Path) -> Result<(), StoreError> {
    let result = match renameat2_no_replace(from, to) {
        Err(error) if is_unsupported(&error) => link_then_unlink(from, to),
        other => other,
    };
    result.map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            StoreError::AlreadyExists {
                path: to.to_path_buf(),
            }
        } else {
            StoreError::Rename {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
                source,
            }
        }
    })
}

pub(super) fn link_then_unlink(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    std::fs::remove_file(from)
}

fn is_unsupported(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS)
    )
}

#[cfg(target_os = "linux")]
fn renameat2_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let c_path = |path: &Path| {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let from_c = c_path(from)?;
    let to_c = c_path(to)?;
    // SAFETY: both pointers come from CStrings that outlive the call.
    let status = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn renameat2_no_replace(_from: &Path, _to: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns the calling thread's nice value.
    fn thread_nice() -> i32 {
        // SAFETY: getpriority only reads the scheduling value of the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    #[tokio::test]
    async fn run_behind_lowers_only_its_thread() {
        let caller_nice = thread_nice();

        let step_nice = run_behind(|| Ok(thread_nice())).await.unwrap();

        assert_eq!(step_nice, 19);
        assert_eq!(thread_nice(), caller_nice);
    }

    #[tokio::test]
    async fn run_behind_returns_step_error() {
        let result: Result<(), StoreError> =
            run_behind(|| Err(StoreError::Task("step failed".to_string()))).await;

        assert!(matches!(result, Err(StoreError::Task(text)) if text == "step failed"));
    }

    #[tokio::test]
    async fn run_behind_reports_panicked_step() {
        let result: Result<(), StoreError> = run_behind(|| panic!("step panicked")).await;

        assert!(matches!(result, Err(StoreError::Task(text)) if text.contains("panicked")));
    }
}
