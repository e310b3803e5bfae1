//! Faults a test arms on an instance to see how bakfleet copes: damaged files, slow or
//! failing backups, dropped connections.

use serde::Deserialize;

/// One fault, set with [`super::Instance::set_fault`] or as `[[instance.fault]]` with a
/// `kind` key in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Flips one byte of the next backup file after it is written and before the BACKUP
    /// statement completes, so a following RESTORE VERIFYONLY sees the damage. Used once.
    CorruptNextBackup { what: Corruption },
    /// Throttles backup writing and verification reads to this rate, so progress can be
    /// watched in `sys.dm_exec_requests`. Stays until cleared.
    SlowBackup { bytes_per_sec: u64 },
    /// Closes the client connection when the next BACKUP reaches `at_percent`; the
    /// engine stops the backup and sets [`super::Session::drop_connection`], which the
    /// server reads. Used once.
    DropConnection {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Fails the next BACKUP with error 3202 and operating system error 112 when it
    /// reaches `at_percent`. Used once.
    DiskFull {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Fails the next BACKUP with error 3271, a nonrecoverable I/O error carrying
    /// operating system error 112, when it reaches `at_percent`. Published SQL Server
    /// output shows 3271 for a full UNC share and 3202 for a full local disk. Used once.
    DiskFullNonrecoverable {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Fails the next BACKUP with error 3201 and operating system error 5 when it opens
    /// its device, as when the service account may not write to the target. Used once.
    DenyAccess,
    /// Closes the client connection when the next RESTORE VERIFYONLY has read
    /// `at_percent` of the file, the way [`Fault::DropConnection`] does for BACKUP.
    /// Used once.
    DropConnectionInVerify {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Records the next backup in msdb with a different backup_set_uuid and LastLSN than
    /// the file's header holds, so a reader that compares the two sees a mismatch. A real
    /// SQL Server never does this; the fault exists only in this simulator. Used once.
    MisrecordNextHistory,
    /// Flips one byte of the next file that RESTORE VERIFYONLY finds valid, right after it
    /// returns, as a failing disk or another writer on the share would. SQL Server has no
    /// part in this; the fault lets a test change a file between verification and fetch.
    /// Used once.
    CorruptAfterVerify { what: Corruption },
    /// Closes the next `count` client connections right after they are accepted, before
    /// any TDS packet, as a restarting listener or a failover would. Counts down, then
    /// disappears.
    DropConnections { count: u32 },
    /// Freezes the progress of every BACKUP that reaches `at_percent`: the statement
    /// neither writes nor ends until its session is killed (or the client cancels or
    /// leaves), as a BACKUP stuck on a hung share would. Stays until cleared.
    StallBackup {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Freezes the progress of every RESTORE VERIFYONLY that reaches `at_percent`, the
    /// way [`Fault::StallBackup`] freezes BACKUP: the statement neither reads nor ends
    /// until its session is killed (or the client cancels or leaves). Stays until cleared.
    StallVerify {
        #[serde(default = "half")]
        at_percent: u8,
    },
    /// Marks `pages` data pages of `database` as damaged, so DBCC CHECKDB reports
    /// consistency errors 8928 and 8939 for each. Stays until cleared.
    CorruptPages {
        database: String,
        #[serde(default = "one")]
        pages: u32,
    },
}

fn one() -> u32 {
    1
}

fn half() -> u8 {
    50
}

/// Which part of a backup file [`Fault::CorruptNextBackup`] damages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// A byte inside the backup data; only a verification with checksums sees it.
    PayloadByte,
    /// A byte inside the first descriptor block; any verification sees it.
    HeaderByte,
}
