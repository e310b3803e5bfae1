//! The databases of an instance: identity, state, recovery model, and the log position
//! and backup bases that decide what the next backup may do and which LSNs it gets.

use bakfile::Lsn;
use time::PrimitiveDateTime;
use uuid::Uuid;

use crate::config::{DatabaseConfig, DatabaseState, Edition, RecoveryModel};

/// Log blocks per virtual log file before the LSN moves to the next VLF.
const BLOCKS_PER_VLF: u32 = 0x4000;

/// One database.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub id: i32,
    pub state: DatabaseState,
    pub recovery_model: RecoveryModel,
    pub read_only: bool,
    pub size_mb: u64,
    pub compatibility_level: u8,
    pub create_date: PrimitiveDateTime,
    pub source_database_id: Option<i32>,
    /// `backupset.database_guid`; changes when a database is restored.
    pub guid: Uuid,
    /// `backupset.family_guid`; survives restores and renames.
    pub family_guid: Uuid,
    pub recovery_fork_guid: Uuid,
    pub binding_id: Uuid,
    pub log: LogState,
    /// `sys.database_recovery_status.first_recovery_fork_guid`: the fork the database
    /// started on; it differs from `recovery_fork_guid` after a restore with recovery.
    pub first_recovery_fork_guid: Uuid,
    /// LSN where the current recovery fork began; `None` while on the first fork.
    pub fork_point_lsn: Option<Lsn>,
    /// Data and log files, in `file_id` order (`sys.master_files`).
    pub files: Vec<DatabaseFile>,
    /// The last full backup that is not COPY_ONLY: the base of differentials.
    pub base: Option<FullBase>,
    /// Data pages changed since `base`, which a differential carries.
    pub changed_pages: u64,
    /// The point a restore sequence reached while the database is RESTORING.
    pub restore: Option<RestoreSequence>,
}

/// A restore sequence in progress: the full backup it started from and how far the
/// data has been rolled forward.
#[derive(Debug, Clone)]
pub struct RestoreSequence {
    /// The restored full backup, which a differential must be based on.
    pub full: FullBase,
    /// `RecoveryForkID` of the restored full backup: the fork the data started on.
    pub first_fork: Uuid,
    /// LSN the data is rolled forward to; the next log backup must include it.
    pub redo_lsn: Lsn,
    /// Server time of `redo_lsn`, which a STOPAT is compared with.
    pub redo_time: PrimitiveDateTime,
    /// A log was restored up to its STOPAT point, so no later log applies.
    pub stopped: bool,
}

/// Position of the transaction log and of the log backup chain.
#[derive(Debug, Clone)]
pub struct LogState {
    /// LSN the next log record gets.
    pub next: Lsn,
    pub last_checkpoint: Lsn,
    /// `first_lsn` of the next log backup; `None` while no log chain exists (no full
    /// backup yet, or the recovery model went through SIMPLE since).
    pub chain_start: Option<Lsn>,
    /// Log generated since the last log backup.
    pub pending_bytes: u64,
    /// A log backup was taken since the chain started; the first one begins the chain.
    pub chain_has_log_backup: bool,
    /// No log was written since the last log backup, so RESTORE over the database loses
    /// nothing (no error 3159).
    pub tail_backed_up: bool,
}

/// What a differential needs from its base.
#[derive(Debug, Clone, Copy)]
pub struct FullBase {
    pub checkpoint_lsn: Lsn,
    pub backup_set_uuid: Uuid,
    /// Server local start time of the full backup (`differential_base_time`).
    pub backup_start: PrimitiveDateTime,
}

/// `type` of a database file in `sys.master_files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Rows,
    Log,
}

impl FileKind {
    /// `type` and `type_desc` of sys.master_files.
    pub fn code(self) -> (u8, &'static str) {
        match self {
            FileKind::Rows => (0, "ROWS"),
            FileKind::Log => (1, "LOG"),
        }
    }

    /// `file_type` of msdb.dbo.backupfile: D data, L log.
    pub fn backup_letter(self) -> &'static str {
        match self {
            FileKind::Rows => "D",
            FileKind::Log => "L",
        }
    }
}

/// One data or log file of a database.
#[derive(Debug, Clone)]
pub struct DatabaseFile {
    pub file_id: i32,
    pub kind: FileKind,
    /// Logical name (`name`), which RESTORE ... WITH MOVE refers to.
    pub logical_name: String,
    /// Operating system path on the server (`physical_name`).
    pub physical_name: String,
    /// Size in 8 KiB pages.
    pub size_pages: u64,
    pub file_guid: Uuid,
    pub create_lsn: Lsn,
}

/// LSNs of one backup set, as msdb.dbo.backupset records them.
#[derive(Debug, Clone, Copy)]
pub struct BackupLsns {
    pub first: Lsn,
    pub last: Lsn,
    pub checkpoint: Lsn,
    pub database_backup: Lsn,
}

impl Database {
    /// Builds a database from its configuration; `id` is its `database_id`.
    pub fn from_config(
        config: &DatabaseConfig,
        id: i32,
        default_level: u8,
        now: PrimitiveDateTime,
        data_directory: &str,
    ) -> Database {
        let mut database = Database::new(&config.name, id, now, data_directory);
        database.state = config.state;
        database.recovery_model = config.recovery_model;
        database.read_only = config.read_only;
        database.set_size_mb(config.size_mb);
        database.compatibility_level = config.compatibility_level.unwrap_or(default_level);
        database
    }

    /// A new online FULL-recovery database of model's size (8 MiB) and LSNs that start
    /// in a VLF derived from its id, with a data and a log file in `data_directory`.
    pub fn new(name: &str, id: i32, now: PrimitiveDateTime, data_directory: &str) -> Database {
        let vlf = 30 + u32::try_from(id).unwrap_or(0);
        let start = Lsn {
            vlf,
            block: 16,
            slot: 1,
        };
        let recovery_fork_guid = Uuid::new_v4();
        let files = default_files(name, data_directory, start);
        let mut database = Database {
            name: name.to_string(),
            id,
            state: DatabaseState::Online,
            recovery_model: RecoveryModel::Full,
            read_only: false,
            size_mb: 8,
            compatibility_level: 160,
            create_date: now,
            source_database_id: None,
            guid: Uuid::new_v4(),
            family_guid: Uuid::new_v4(),
            recovery_fork_guid,
            binding_id: Uuid::new_v4(),
            first_recovery_fork_guid: recovery_fork_guid,
            fork_point_lsn: None,
            files,
            log: LogState {
                next: start,
                last_checkpoint: start,
                chain_start: None,
                pending_bytes: 0,
                chain_has_log_backup: false,
                tail_backed_up: false,
            },
            base: None,
            changed_pages: 0,
            restore: None,
        };
        database.set_size_mb(8);
        database
    }

    pub fn pages(&self) -> u64 {
        self.size_mb * 128
    }

    /// Sets the data size and sizes the files to match. The data file contains all pages
    /// and the log a quarter of them, but at least 8 MiB.
    pub fn set_size_mb(&mut self, size_mb: u64) {
        self.size_mb = size_mb;
        for file in &mut self.files {
            file.size_pages = match file.kind {
                FileKind::Rows => size_mb * 128,
                FileKind::Log => (size_mb / 4).max(8) * 128,
            };
        }
    }

    /// Returns the logical names of the first data file and the log file, which BACKUP's
    /// 4035 messages name.
    pub fn logical_file_names(&self) -> (String, String) {
        let name_of = |kind: FileKind| {
            self.files
                .iter()
                .find(|file| file.kind == kind)
                .map(|file| file.logical_name.clone())
                .unwrap_or_default()
        };
        (name_of(FileKind::Rows), name_of(FileKind::Log))
    }

    /// Simulates the workload between two backups: some log and some changed pages, so
    /// consecutive backups differ in size and LSNs.
    pub fn simulate_activity(&mut self) {
        let log_bytes = (self.size_mb * 1024 * 1024 / 128).max(64 * 1024);
        self.write_log(log_bytes);
        let changed = (self.pages() / 16).max(8);
        self.changed_pages = (self.changed_pages + changed).min(self.pages());
    }

    /// Appends `bytes` of log and moves the next LSN past them.
    pub fn write_log(&mut self, bytes: u64) {
        self.log.pending_bytes += bytes;
        self.log.tail_backed_up = false;
        let blocks = u32::try_from(bytes.div_ceil(512))
            .unwrap_or(u32::MAX)
            .max(1);
        let next = &mut self.log.next;
        let block = u64::from(next.block) + u64::from(blocks);
        next.vlf += u32::try_from(block / u64::from(BLOCKS_PER_VLF)).unwrap_or(0);
        next.block = u32::try_from(block % u64::from(BLOCKS_PER_VLF)).unwrap_or(0);
        next.slot = 1;
    }

    /// Writes a checkpoint record and returns its LSN.
    pub fn checkpoint(&mut self) -> Lsn {
        let lsn = self.log.next;
        self.write_log(512);
        self.log.last_checkpoint = lsn;
        lsn
    }

    /// LSNs of a full or differential backup taken now. The simulated database has no
    /// open transaction at the checkpoint, so the backup's first LSN is the checkpoint's.
    pub fn data_backup_lsns(&mut self) -> BackupLsns {
        let checkpoint = self.checkpoint();
        // The log written while the data is copied goes into the backup's log portion.
        self.write_log(1024);
        BackupLsns {
            first: checkpoint,
            last: self.log.next,
            checkpoint,
            database_backup: self
                .base
                .map(|base| base.checkpoint_lsn)
                .unwrap_or_default(),
        }
    }

    /// LSNs of a log backup taken now; `None` without a log chain (error 4214).
    pub fn log_backup_lsns(&self) -> Option<BackupLsns> {
        let first = self.log.chain_start?;
        Some(BackupLsns {
            first,
            last: self.log.next,
            checkpoint: self.log.last_checkpoint,
            database_backup: self
                .base
                .map(|base| base.checkpoint_lsn)
                .unwrap_or_default(),
        })
    }

    /// Records a finished full backup. A COPY_ONLY full changes neither the differential
    /// base nor the log chain (BACKUP (Transact-SQL), COPY_ONLY).
    pub fn full_backup_done(
        &mut self,
        lsns: &BackupLsns,
        set_uuid: Uuid,
        started: PrimitiveDateTime,
        copy_only: bool,
    ) {
        if copy_only {
            return;
        }
        self.base = Some(FullBase {
            checkpoint_lsn: lsns.checkpoint,
            backup_set_uuid: set_uuid,
            backup_start: started,
        });
        self.changed_pages = 0;
        self.start_chain_if_missing(lsns.first);
    }

    /// Records a finished differential: it restarts a log chain broken by SIMPLE.
    pub fn differential_done(&mut self, lsns: &BackupLsns) {
        self.start_chain_if_missing(lsns.first);
    }

    /// Records a finished log backup; a COPY_ONLY one leaves the chain where it was.
    pub fn log_backup_done(&mut self, lsns: &BackupLsns, copy_only: bool) {
        if copy_only {
            return;
        }
        self.log.chain_start = Some(lsns.last);
        self.log.pending_bytes = 0;
        self.log.chain_has_log_backup = true;
        self.log.tail_backed_up = true;
    }

    fn start_chain_if_missing(&mut self, first: Lsn) {
        if self.recovery_model != RecoveryModel::Simple && self.log.chain_start.is_none() {
            self.log.chain_start = Some(first);
            self.log.pending_bytes = 0;
            self.log.chain_has_log_backup = false;
        }
    }

    /// Changes the recovery model. Going to or from SIMPLE breaks the log chain, so the
    /// next log backup needs a full or differential backup first.
    pub fn set_recovery_model(&mut self, model: RecoveryModel) {
        let simple_before = self.recovery_model == RecoveryModel::Simple;
        let simple_after = model == RecoveryModel::Simple;
        if simple_before != simple_after {
            self.log.chain_start = None;
        }
        self.recovery_model = model;
    }
}

/// Logical and physical file names: system databases have their own, user databases get
/// SQL Server's defaults `name` / `name_log` in files `name.mdf` / `name_log.ldf`.
pub fn default_files(database: &str, data_directory: &str, create_lsn: Lsn) -> Vec<DatabaseFile> {
    let system = match database.to_ascii_lowercase().as_str() {
        "master" => Some(["master", "mastlog", "master.mdf", "mastlog.ldf"]),
        "tempdb" => Some(["tempdev", "templog", "tempdb.mdf", "templog.ldf"]),
        "model" => Some(["modeldev", "modellog", "model.mdf", "modellog.ldf"]),
        "msdb" => Some(["MSDBData", "MSDBLog", "MSDBData.mdf", "MSDBLog.ldf"]),
        _ => None,
    };
    let [data, log, data_os_name, log_os_name] = match system {
        Some(names) => names.map(String::from),
        None => [
            database.to_string(),
            format!("{database}_log"),
            format!("{database}.mdf"),
            format!("{database}_log.ldf"),
        ],
    };
    let file = |file_id: i32, kind: FileKind, logical_name: String, os_name: String| DatabaseFile {
        file_id,
        kind,
        logical_name,
        physical_name: join_server_path(data_directory, &os_name),
        size_pages: 0,
        file_guid: Uuid::new_v4(),
        create_lsn,
    };
    vec![
        file(1, FileKind::Rows, data, data_os_name),
        file(2, FileKind::Log, log, log_os_name),
    ]
}

/// Joins a server directory and a file name with the separator the directory uses.
pub fn join_server_path(directory: &str, file_name: &str) -> String {
    let separator = if directory.starts_with('/') {
        '/'
    } else {
        '\\'
    };
    format!(
        "{}{separator}{file_name}",
        directory.trim_end_matches(separator)
    )
}

/// The four system databases with the ids SQL Server gives them.
pub fn system_databases(
    edition: Edition,
    level: u8,
    now: PrimitiveDateTime,
    data_directory: &str,
) -> Vec<Database> {
    let model_recovery = match edition {
        Edition::Express => RecoveryModel::Simple,
        _ => RecoveryModel::Full,
    };
    let specs = [
        ("master", 1, RecoveryModel::Simple, 6),
        ("tempdb", 2, RecoveryModel::Simple, 16),
        ("model", 3, model_recovery, 8),
        ("msdb", 4, RecoveryModel::Simple, 22),
    ];
    specs
        .into_iter()
        .map(|(name, id, recovery_model, size_mb)| {
            let mut database = Database::new(name, id, now, data_directory);
            database.recovery_model = recovery_model;
            database.set_size_mb(size_mb);
            database.compatibility_level = level;
            database
        })
        .collect()
}

pub fn is_system(name: &str) -> bool {
    ["master", "tempdb", "model", "msdb"]
        .iter()
        .any(|system| system.eq_ignore_ascii_case(name))
}

/// `state` and `state_desc` of sys.databases.
pub fn state_code(state: DatabaseState) -> (u8, &'static str) {
    match state {
        DatabaseState::Online => (0, "ONLINE"),
        DatabaseState::Restoring => (1, "RESTORING"),
        DatabaseState::Recovering => (2, "RECOVERING"),
        DatabaseState::RecoveryPending => (3, "RECOVERY_PENDING"),
        DatabaseState::Suspect => (4, "SUSPECT"),
        DatabaseState::Emergency => (5, "EMERGENCY"),
        DatabaseState::Offline => (6, "OFFLINE"),
    }
}

/// `recovery_model` and `recovery_model_desc` of sys.databases.
pub fn recovery_code(model: RecoveryModel) -> (u8, &'static str) {
    match model {
        RecoveryModel::Full => (1, "FULL"),
        RecoveryModel::BulkLogged => (2, "BULK_LOGGED"),
        RecoveryModel::Simple => (3, "SIMPLE"),
    }
}
