//! A test instance with one login, a Sales database and a mapped share directory.

use std::sync::atomic::AtomicBool;

use crate::config::{DatabaseConfig, InstanceConfig, LoginConfig, PathMap};
use crate::engine::{Instance, LoginRequest, Session};
use crate::reply::{Column, Done, Message, ReplyEvent, Value};

pub const SHARE: &str = r"\\127.0.0.1\backup";

pub struct Harness {
    pub instance: Instance,
    pub session: Session,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with(|_| {})
    }

    /// A harness whose instance configuration `adjust` may change first.
    pub fn with(adjust: impl FnOnce(&mut InstanceConfig)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = InstanceConfig::new("sales-prod");
        config.machine_name = Some("SQL01".into());
        config.logins.push(LoginConfig {
            name: "bakfleet".into(),
            password: "pw".into(),
            sysadmin: true,
        });
        let mut sales = DatabaseConfig::new("Sales");
        sales.size_mb = 2;
        config.databases.push(sales);
        config.path_maps.push(PathMap {
            server: SHARE.into(),
            local: dir.path().to_path_buf(),
        });
        adjust(&mut config);
        let instance = Instance::new(config);
        let session = instance.login(&login_request()).unwrap();
        Harness {
            instance,
            session,
            dir,
        }
    }

    pub fn run(&mut self, sql: &str) -> Vec<ReplyEvent> {
        run_on(&self.instance, &mut self.session, sql)
    }

    /// Runs a single SELECT and returns its columns and rows; fails on any error.
    pub fn query(&mut self, sql: &str) -> (Vec<Column>, Vec<Vec<Value>>) {
        let events = self.run(sql);
        assert!(errors(&events).is_empty(), "{sql}: {:?}", errors(&events));
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        for event in events {
            match event {
                ReplyEvent::Columns(found) => columns = found,
                ReplyEvent::Row(row) => rows.push(row),
                _ => {}
            }
        }
        (columns, rows)
    }

    /// A path on the mapped share and the local file it lands in.
    pub fn share_path(&self, file: &str) -> (String, std::path::PathBuf) {
        (format!(r"{SHARE}\{file}"), self.dir.path().join(file))
    }
}

pub fn login_request() -> LoginRequest {
    LoginRequest {
        user: "bakfleet".into(),
        password: "pw".into(),
        ..LoginRequest::default()
    }
}

pub fn run_on(instance: &Instance, session: &mut Session, sql: &str) -> Vec<ReplyEvent> {
    let cancel = AtomicBool::new(false);
    let mut events = Vec::new();
    instance.execute_batch(session, sql, &cancel, &mut |event| events.push(event));
    events
}

pub fn errors(events: &[ReplyEvent]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|event| match event {
            ReplyEvent::Error(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn infos(events: &[ReplyEvent]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|event| match event {
            ReplyEvent::Info(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

pub fn error_numbers(events: &[ReplyEvent]) -> Vec<i32> {
    errors(events)
        .iter()
        .map(|message| message.number)
        .collect()
}

pub fn dones(events: &[ReplyEvent]) -> Vec<Done> {
    events
        .iter()
        .filter_map(|event| match event {
            ReplyEvent::Done(done) => Some(*done),
            _ => None,
        })
        .collect()
}

pub fn text(value: &Value) -> &str {
    match value {
        Value::Str(text) => text,
        other => panic!("not a string: {other:?}"),
    }
}
