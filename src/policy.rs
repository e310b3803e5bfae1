//! The backup type decision: from the server's facts and the store's history of a
//! database, whether a requested FULL, DIFF or LOG runs as requested, runs as a FULL, or
//! not at all. It does no I/O, so every rule has a table test.

use uuid::Uuid;

use crate::backup::{BackupType, Lsn};
use crate::fleet::Policy;

/// Database states in which no backup can be taken ("sys.databases (Transact-SQL)",
/// `state_desc`). Any state other than ONLINE skips the run; these are the documented ones.
pub const UNAVAILABLE_STATES: [&str; 6] = [
    "OFFLINE",
    "RESTORING",
    "RECOVERING",
    "RECOVERY_PENDING",
    "SUSPECT",
    "EMERGENCY",
];

/// The server's facts about one database just before a backup.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DatabaseFacts {
    /// The name as `sys.databases` spells it.
    pub name: String,
    /// `sys.databases.state_desc`, e.g. `ONLINE`.
    pub state: String,
    /// `sys.databases.source_database_id` is set: a database snapshot.
    pub is_snapshot: bool,
    /// `sys.databases.recovery_model_desc`: FULL, BULK_LOGGED or SIMPLE.
    pub recovery_model: String,
    pub is_read_only: bool,
    /// `sys.master_files.differential_base_lsn` of the primary data file (file_id 1);
    /// NULL until a full backup exists.
    pub differential_base_lsn: Option<Lsn>,
    /// `sys.master_files.differential_base_guid`: the backup_set_guid of the full that
    /// a DIFF would be based on.
    pub differential_base_guid: Option<Uuid>,
    /// `sys.database_recovery_status.last_log_backup_lsn`: where the next LOG backup
    /// starts; NULL when no log chain exists (SIMPLE, or no full since FULL recovery).
    pub last_log_backup_lsn: Option<Lsn>,
    /// `sys.database_recovery_status.database_guid`; changes when the database is
    /// restored or re-created.
    pub database_guid: Option<Uuid>,
}

/// The catalogue's backups of one database, reduced to what the decision compares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreHistory {
    /// The newest full backup that is not copy-only: the one a DIFF can be based on.
    pub newest_full: Option<StoredFull>,
    /// `last_lsn` of the newest log backup that finished after the newest full, or of
    /// the newest log backup when there is no full.
    pub newest_log_last_lsn: Option<Lsn>,
    /// `database_guid` of the newest backup of any type.
    pub newest_database_guid: Option<Uuid>,
}

/// The fields of a stored full backup that the decision compares with the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFull {
    pub backup_set_guid: Option<Uuid>,
    pub database_guid: Option<Uuid>,
    pub last_lsn: Lsn,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Take a backup of `backup_type`. `reason` explains why it differs from the request.
    Run {
        backup_type: BackupType,
        reason: Option<String>,
    },
    /// The requested type does not exist for this database (LOG under SIMPLE, DIFF of
    /// master). Recorded as such: neither a failure nor silent.
    NotApplicable(String),
    /// The database cannot be backed up now (tempdb, a snapshot, not ONLINE).
    Skip(String),
    /// The backup would not be restorable as requested and the policy forbids a FULL.
    Fail(String),
}

/// Decides which backup to take of one database for a `requested` type.
///
/// The rules follow SQL Server's own: a DIFF needs a full as differential base, and a LOG
/// needs an unbroken log chain that starts at a full ("Differential Backups (SQL Server)",
/// "Transaction Log Backups (SQL Server)"). When the store could not restore the backup
/// as requested, the policy's `change_backup_type` makes it a FULL, otherwise it fails.
pub fn decide(
    requested: BackupType,
    facts: &DatabaseFacts,
    history: &StoreHistory,
    policy: &Policy,
) -> Decision {
    if let Some(reason) = unavailable(facts) {
        return Decision::Skip(reason);
    }
    if let Some(reason) = not_applicable(requested, facts) {
        return Decision::NotApplicable(reason);
    }
    let problem = match requested {
        BackupType::Full => None,
        BackupType::Diff => differential_problem(facts, history),
        BackupType::Log => log_chain_problem(facts, history),
    };
    match problem {
        None => Decision::Run {
            backup_type: requested,
            reason: None,
        },
        Some(problem) if policy.change_backup_type => Decision::Run {
            backup_type: BackupType::Full,
            reason: Some(format!("{requested} changed to full: {problem}")),
        },
        Some(problem) => Decision::Fail(format!(
            "{requested} backup not restorable: {problem}; policy {:?} has \
             change_backup_type = false, so no full backup was taken in its place",
            policy.name
        )),
    }
}

/// Returns why no backup of any type can be taken now, if so.
fn unavailable(facts: &DatabaseFacts) -> Option<String> {
    if facts.name.eq_ignore_ascii_case("tempdb") {
        return Some("tempdb is recreated at every start and cannot be backed up".to_string());
    }
    if facts.is_snapshot {
        return Some("database snapshots cannot be backed up".to_string());
    }
    if facts.state != "ONLINE" {
        return Some(format!(
            "database is {}; only ONLINE databases can be backed up",
            facts.state
        ));
    }
    None
}

fn not_applicable(requested: BackupType, facts: &DatabaseFacts) -> Option<String> {
    if requested != BackupType::Full && facts.name.eq_ignore_ascii_case("master") {
        return Some(format!(
            "not applicable: only full backups exist for master, not {requested}"
        ));
    }
    if requested == BackupType::Log && facts.recovery_model == "SIMPLE" {
        return Some(
            "not applicable: log backups need the FULL or BULK_LOGGED recovery model, and \
             the database uses SIMPLE"
                .to_string(),
        );
    }
    None
}

/// Returns why a DIFF now would not restore from the store's fulls, if so.
fn differential_problem(facts: &DatabaseFacts, history: &StoreHistory) -> Option<String> {
    let Some(base) = facts.differential_base_guid else {
        return Some("the database has no differential base (no full backup yet)".to_string());
    };
    let stored = history
        .newest_full
        .as_ref()
        .and_then(|full| full.backup_set_guid);
    match stored {
        Some(stored) if stored == base => None,
        Some(stored) => Some(format!(
            "the differential base is backup set {base}, but the newest full in the store \
             is {stored} (a full taken outside bakfleet, or one the store lost)"
        )),
        None => Some(format!(
            "the differential base is backup set {base}, which is not in the store"
        )),
    }
}

/// Returns why a LOG now would not continue a chain the store can restore, if so.
fn log_chain_problem(facts: &DatabaseFacts, history: &StoreHistory) -> Option<String> {
    let Some(server_lsn) = facts.last_log_backup_lsn else {
        return Some(
            "the database has no log chain (last_log_backup_lsn is NULL: a new database, \
             or a switch from SIMPLE recovery)"
                .to_string(),
        );
    };
    let Some(full) = &history.newest_full else {
        return Some("the store has no full backup of this database".to_string());
    };
    if let (Some(server), Some(stored)) = (facts.database_guid, history.newest_database_guid) {
        if server != stored {
            return Some(format!(
                "the database_guid is {server}, but the store's newest backup has {stored} \
                 (the database was restored or re-created)"
            ));
        }
    }
    let chain_ok = match history.newest_log_last_lsn {
        Some(log_lsn) if log_lsn == server_lsn => true,
        // The store's log chain continues past its newest full, so the server must
        // continue exactly where that chain ends.
        Some(log_lsn) if log_lsn > full.last_lsn => false,
        // No log since the newest full: the next log covers that full when it starts
        // at or before the full's last LSN.
        _ => server_lsn <= full.last_lsn,
    };
    if chain_ok {
        return None;
    }
    let store_end = history.newest_log_last_lsn.unwrap_or(full.last_lsn);
    // A server ahead of the chain lost log to a backup bakfleet did not take. A server
    // behind it went back in time, as a restore of an earlier backup over the database
    // does, so the log it writes next belongs to another branch.
    let cause = if server_lsn > store_end {
        "a log backup was taken outside bakfleet"
    } else {
        "the database was restored to an earlier point, so its log branched off the chain"
    };
    Some(format!(
        "the next log backup would start at LSN {server_lsn}, but the store's chain ends at \
         LSN {store_end} ({cause})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Uuid = Uuid::from_u128(0xb1);
    const OTHER: Uuid = Uuid::from_u128(0xb2);
    const DB_GUID: Uuid = Uuid::from_u128(0xd1);
    const RESTORED_GUID: Uuid = Uuid::from_u128(0xd2);

    fn online(name: &str, recovery_model: &str) -> DatabaseFacts {
        DatabaseFacts {
            name: name.to_string(),
            state: "ONLINE".to_string(),
            recovery_model: recovery_model.to_string(),
            differential_base_lsn: Some(Lsn(100)),
            differential_base_guid: Some(BASE),
            last_log_backup_lsn: Some(Lsn(300)),
            database_guid: Some(DB_GUID),
            ..DatabaseFacts::default()
        }
    }

    fn history() -> StoreHistory {
        StoreHistory {
            newest_full: Some(StoredFull {
                backup_set_guid: Some(BASE),
                database_guid: Some(DB_GUID),
                last_lsn: Lsn(200),
            }),
            newest_log_last_lsn: Some(Lsn(300)),
            newest_database_guid: Some(DB_GUID),
        }
    }

    fn policy(change_backup_type: bool) -> Policy {
        let fleet = crate::fleet::Fleet::parse(
            "[[instance]]\nname = \"a\"\nhost = \"h\"\n\
             auth = { kind = \"sql\", user = \"u\", password_env = \"P\" }\n\
             staging = { local = { server_path = \"/b\", dir = \"/b\" } }\n",
            std::path::Path::new("fleet.toml"),
        )
        .expect("minimal fleet");
        let mut policy = fleet.instances[0].policy.clone();
        policy.change_backup_type = change_backup_type;
        policy
    }

    fn run(backup_type: BackupType) -> Decision {
        Decision::Run {
            backup_type,
            reason: None,
        }
    }

    /// Returns the reason of a promotion to FULL, failing on any other decision.
    fn promotion(decision: Decision) -> String {
        match decision {
            Decision::Run {
                backup_type: BackupType::Full,
                reason: Some(reason),
            } => reason,
            other => panic!("expected a promotion to full, got {other:?}"),
        }
    }

    #[test]
    fn decide_runs_healthy_requests_unchanged() {
        let facts = online("Sales", "FULL");
        for requested in BackupType::ALL {
            let decision = decide(requested, &facts, &history(), &policy(true));
            assert_eq!(decision, run(requested), "{requested}");
        }
    }

    #[test]
    fn decide_skips_unavailable_databases() {
        let mut cases = vec![("tempdb", "ONLINE", false, "tempdb is recreated")];
        for state in UNAVAILABLE_STATES {
            cases.push(("Sales", state, false, state));
        }
        cases.push(("Sales_snap", "ONLINE", true, "snapshots"));
        for (name, state, is_snapshot, expected) in cases {
            let facts = DatabaseFacts {
                state: state.to_string(),
                is_snapshot,
                ..online(name, "FULL")
            };
            for requested in BackupType::ALL {
                let decision = decide(requested, &facts, &history(), &policy(true));
                let Decision::Skip(reason) = &decision else {
                    panic!("{name} {state} {requested}: {decision:?}");
                };
                assert!(reason.contains(expected), "{reason}");
            }
        }
    }

    #[test]
    fn decide_log_on_simple_not_applicable() {
        let facts = DatabaseFacts {
            last_log_backup_lsn: None,
            ..online("Sales", "SIMPLE")
        };
        let decision = decide(BackupType::Log, &facts, &history(), &policy(true));
        let Decision::NotApplicable(reason) = decision else {
            panic!("{decision:?}");
        };
        assert!(reason.starts_with("not applicable: "), "{reason}");
        assert!(reason.contains("SIMPLE"), "{reason}");
        let diff = decide(BackupType::Diff, &facts, &history(), &policy(true));
        assert_eq!(diff, run(BackupType::Diff), "DIFF works under SIMPLE");
    }

    #[test]
    fn decide_master_only_full() {
        let facts = online("master", "SIMPLE");
        for requested in [BackupType::Diff, BackupType::Log] {
            let decision = decide(requested, &facts, &history(), &policy(true));
            let Decision::NotApplicable(reason) = decision else {
                panic!("{requested}: {decision:?}");
            };
            assert!(reason.contains("only full backups exist for master"));
        }
        let full = decide(BackupType::Full, &facts, &history(), &policy(true));
        assert_eq!(full, run(BackupType::Full));
    }

    #[test]
    fn decide_diff_without_base_promotes() {
        let facts = DatabaseFacts {
            differential_base_lsn: None,
            differential_base_guid: None,
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Diff, &facts, &history(), &policy(true)));
        assert!(reason.starts_with("diff changed to full: "), "{reason}");
        assert!(reason.contains("no differential base"), "{reason}");
    }

    #[test]
    fn decide_diff_foreign_base_promotes() {
        let facts = DatabaseFacts {
            differential_base_guid: Some(OTHER),
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Diff, &facts, &history(), &policy(true)));
        assert!(reason.contains(&OTHER.to_string()), "{reason}");
        assert!(reason.contains("taken outside bakfleet"), "{reason}");

        let empty = StoreHistory::default();
        let reason = promotion(decide(BackupType::Diff, &facts, &empty, &policy(true)));
        assert!(reason.contains("not in the store"), "{reason}");
    }

    #[test]
    fn decide_diff_fails_without_change() {
        let facts = DatabaseFacts {
            differential_base_guid: None,
            ..online("Sales", "FULL")
        };
        let decision = decide(BackupType::Diff, &facts, &history(), &policy(false));
        let Decision::Fail(reason) = decision else {
            panic!("{decision:?}");
        };
        assert!(reason.contains("no differential base"), "{reason}");
        assert!(reason.contains("change_backup_type = false"), "{reason}");
    }

    #[test]
    fn decide_log_without_chain_promotes() {
        let facts = DatabaseFacts {
            last_log_backup_lsn: None,
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Log, &facts, &history(), &policy(true)));
        assert!(reason.starts_with("log changed to full: "), "{reason}");
        assert!(reason.contains("no log chain"), "{reason}");

        let decision = decide(BackupType::Log, &facts, &history(), &policy(false));
        assert!(matches!(decision, Decision::Fail(_)), "{decision:?}");
    }

    #[test]
    fn decide_log_without_stored_full_promotes() {
        let facts = online("Sales", "FULL");
        let empty = StoreHistory::default();
        let reason = promotion(decide(BackupType::Log, &facts, &empty, &policy(true)));
        assert!(reason.contains("no full backup"), "{reason}");
    }

    #[test]
    fn decide_log_after_restore_promotes() {
        let facts = DatabaseFacts {
            database_guid: Some(RESTORED_GUID),
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Log, &facts, &history(), &policy(true)));
        assert!(reason.contains(&RESTORED_GUID.to_string()), "{reason}");
        assert!(reason.contains("restored"), "{reason}");
    }

    #[test]
    fn decide_log_taken_elsewhere_promotes() {
        let facts = DatabaseFacts {
            last_log_backup_lsn: Some(Lsn(350)),
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Log, &facts, &history(), &policy(true)));
        assert!(reason.contains("LSN 350"), "{reason}");
        assert!(reason.contains("LSN 300"), "{reason}");
        assert!(reason.contains("outside bakfleet"), "{reason}");
    }

    #[test]
    fn decide_log_behind_chain_promotes() {
        let facts = DatabaseFacts {
            last_log_backup_lsn: Some(Lsn(250)),
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Log, &facts, &history(), &policy(true)));
        assert!(reason.contains("LSN 250"), "{reason}");
        assert!(reason.contains("restored to an earlier point"), "{reason}");
        assert!(!reason.contains("outside bakfleet"), "{reason}");
    }

    #[test]
    fn decide_first_log_after_full() {
        let no_log = StoreHistory {
            newest_log_last_lsn: None,
            ..history()
        };
        // The server's chain starts inside the stored full: the log covers it.
        let facts = DatabaseFacts {
            last_log_backup_lsn: Some(Lsn(150)),
            ..online("Sales", "FULL")
        };
        let decision = decide(BackupType::Log, &facts, &no_log, &policy(true));
        assert_eq!(decision, run(BackupType::Log));

        // A log was taken elsewhere after the stored full.
        let facts = DatabaseFacts {
            last_log_backup_lsn: Some(Lsn(250)),
            ..online("Sales", "FULL")
        };
        let reason = promotion(decide(BackupType::Log, &facts, &no_log, &policy(true)));
        assert!(reason.contains("LSN 250"), "{reason}");
        assert!(reason.contains("ends at LSN 200"), "{reason}");
    }

    #[test]
    fn decide_log_older_than_full() {
        // The newest stored log predates the newest full, and a log taken elsewhere
        // before that full moved the server's chain: the full still covers it.
        let history = StoreHistory {
            newest_log_last_lsn: Some(Lsn(120)),
            ..history()
        };
        let facts = DatabaseFacts {
            last_log_backup_lsn: Some(Lsn(180)),
            ..online("Sales", "FULL")
        };
        let decision = decide(BackupType::Log, &facts, &history, &policy(true));
        assert_eq!(decision, run(BackupType::Log));
    }
}
