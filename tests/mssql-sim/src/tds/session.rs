//! One client connection: pre-login, login, then requests until the client leaves.
//!
//! A reader task turns packets into messages. The session task runs each batch on a
//! blocking thread and encodes its events as they arrive, so progress messages reach the
//! client while a BACKUP still runs, and an ATTENTION can cancel it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::encryption::{self, Transport};
use super::login::{self, decode_utf16, Login7, TdsVersion};
use super::packet::{
    self, Message as ClientMessage, PacketError, PacketType, PacketWriter, DEFAULT_PACKET_SIZE,
    MAX_PACKET_SIZE, MIN_PACKET_SIZE,
};
use super::prelogin;
use super::rpc;
use super::tls::ServerTls;
use super::token::{
    DoneKind, EnvChange, TokenEncoder, DONE_ATTN, DONE_COUNT, DONE_ERROR, DONE_MORE,
};
use super::Backend;
use crate::reply::{Column, Done, Message, ReplyEvent};

/// Events a running batch may queue before the engine thread waits for the socket.
const EVENT_QUEUE_LEN: usize = 256;

/// Errors that end a connection.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Packet(#[from] PacketError),
    #[error("writing to the client failed: {0}")]
    Write(#[from] std::io::Error),
    #[error("invalid PRELOGIN: {0}")]
    PreLogin(#[from] prelogin::PreLoginError),
    #[error("TLS handshake with the client failed: {0}")]
    Tls(std::io::Error),
    #[error("invalid LOGIN7: {0}")]
    Login(#[from] login::LoginError),
    #[error("expected {expected} but the client sent packet type 0x{got:02X}")]
    Unexpected { expected: &'static str, got: u8 },
    #[error("request of type 0x{packet_type:02X} is malformed: {reason}")]
    Malformed { packet_type: u8, reason: String },
    #[error("a result row does not fit its columns: {0}; this is a bug in the engine")]
    Encode(#[from] super::token::EncodeError),
    #[error("the engine thread for the batch panicked")]
    EnginePanicked,
}

/// Serves one client connection until it closes, it breaks the protocol, or `shutdown`
/// turns true. A batch still running when the connection ends is cancelled. With `tls`
/// the instance offers encryption in PRELOGIN and accepts TDS 8 strict connections.
///
/// # Errors
/// Reading or writing fails, the TLS handshake fails, or the client sends something the
/// protocol does not allow at that point; a clean close by the client is `Ok`.
pub async fn serve_connection<B: Backend>(
    stream: TcpStream,
    backend: Arc<B>,
    tls: Option<Arc<ServerTls>>,
    shutdown: watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let _ = stream.set_nodelay(true);
    let Some(opened) = encryption::open(stream, &*backend, tls.as_deref()).await? else {
        return Ok(());
    };
    let (reader, writer) = tokio::io::split(opened.stream);
    let (message_tx, messages) = mpsc::channel(16);
    let reader_task = tokio::spawn(read_messages(reader, message_tx));

    let mut connection = Connection {
        backend,
        messages,
        pending: VecDeque::new(),
        writer,
        packets: PacketWriter::new(DEFAULT_PACKET_SIZE),
        encoder: TokenEncoder {
            version: TdsVersion::V7_4,
        },
        shutdown,
        transaction: None,
        next_transaction: 1,
    };
    let result = connection.serve(opened.first_message).await;
    reader_task.abort();
    result
}

/// Forwards complete client messages; the channel closes when the client does.
async fn read_messages(
    mut reader: ReadHalf<Box<dyn Transport>>,
    messages: mpsc::Sender<Result<ClientMessage, PacketError>>,
) {
    loop {
        let next = packet::read_message(&mut reader).await;
        let stop = !matches!(next, Ok(Some(_)));
        let forwarded = match next {
            Ok(Some(message)) => messages.send(Ok(message)).await,
            Ok(None) => return,
            Err(error) => messages.send(Err(error)).await,
        };
        if stop || forwarded.is_err() {
            return;
        }
    }
}

/// How a request's statements end: a SQL batch ends each with DONE, an RPC with
/// DONEINPROC followed by RETURNSTATUS and DONEPROC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestKind {
    Batch,
    Rpc,
}

/// What ended a running batch besides its normal completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interruption {
    None,
    Attention,
    Closed,
}

struct Connection<B: Backend> {
    backend: Arc<B>,
    messages: mpsc::Receiver<Result<ClientMessage, PacketError>>,
    /// Requests that arrived while a batch ran; served after it, in order.
    pending: VecDeque<ClientMessage>,
    writer: WriteHalf<Box<dyn Transport>>,
    packets: PacketWriter,
    encoder: TokenEncoder,
    shutdown: watch::Receiver<bool>,
    /// Descriptor of the transaction a transaction manager request began.
    transaction: Option<u64>,
    next_transaction: u64,
}

impl<B: Backend> Connection<B> {
    async fn serve(&mut self, first_message: ClientMessage) -> Result<(), SessionError> {
        if first_message.packet_type != PacketType::Login7 {
            return Err(SessionError::Unexpected {
                expected: "LOGIN7",
                got: first_message.packet_type.to_byte(),
            });
        }
        let login = login::parse(&first_message.payload)?;
        let Some(session) = self.login(&login).await? else {
            return Ok(());
        };
        let spid = self.backend.spid(&session);
        tracing::info!(
            instance = self.backend.name(),
            spid,
            user = %login.user_name,
            tds_version = %self.encoder.version,
            "login succeeded"
        );

        // The slot is empty only while a batch runs, or after its engine thread panicked.
        let mut slot = Some(session);
        let result = self.serve_requests(&mut slot).await;
        if let Some(session) = &slot {
            self.backend.end_session(session);
        }
        tracing::info!(instance = self.backend.name(), spid, "session ended");
        result
    }

    /// Receives the next client message; `None` when the client closed the connection
    /// or the simulator shuts down.
    async fn next_message(&mut self) -> Result<Option<ClientMessage>, SessionError> {
        if let Some(message) = self.pending.pop_front() {
            return Ok(Some(message));
        }
        if *self.shutdown.borrow() {
            return Ok(None);
        }
        tokio::select! {
            received = self.messages.recv() => match received {
                Some(Ok(message)) => Ok(Some(message)),
                Some(Err(error)) => Err(error.into()),
                None => Ok(None),
            },
            _ = self.shutdown.changed() => Ok(None),
        }
    }

    /// Negotiates the version and packet size and checks the login; `None` after a
    /// failed login, whose reply has been sent.
    async fn login(&mut self, login: &Login7) -> Result<Option<B::Session>, SessionError> {
        self.encoder.version = TdsVersion::negotiate(login.client_version);
        let outcome = if login.integrated_security {
            Err(self.integrated_login_error(login))
        } else {
            self.backend.login(login)
        };
        let session = match outcome {
            Ok(session) => session,
            Err(message) => {
                tracing::warn!(
                    instance = self.backend.name(),
                    user = %login.user_name,
                    number = message.number,
                    "login failed"
                );
                self.encoder.message(self.packets.buffer(), &message);
                self.encoder
                    .done(self.packets.buffer(), DoneKind::Done, DONE_ERROR, 0);
                self.packets.finish(&mut self.writer).await?;
                return Ok(None);
            }
        };

        let packet_size = negotiated_packet_size(login.packet_size);
        self.send_login_reply(&self.backend.database(&session), packet_size)
            .await?;
        self.packets.set_packet_size(packet_size);
        Ok(Some(session))
    }

    /// Message 18452 (severity 14), which SQL Server sends when it cannot accept a
    /// Windows login; the simulator accepts SQL logins only.
    fn integrated_login_error(&self, login: &Login7) -> Message {
        let _ = login;
        Message {
            number: 18452,
            state: 1,
            class: 14,
            text: "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.".to_string(),
            server: self.backend.server_name(),
            procedure: String::new(),
            line: 1,
        }
    }

    /// Sends the login reply in the order SQL Server does: database ENVCHANGE and 5701,
    /// collation (sorting locale and flags at TDS 7.0), language ENVCHANGE and 5703, LOGINACK, packet size, DONE.
    async fn send_login_reply(
        &mut self,
        database: &str,
        packet_size: usize,
    ) -> Result<(), SessionError> {
        let encoder = self.encoder;
        let server = self.backend.server_name();
        let info = |number: i32, state: u8, text: String| Message {
            number,
            state,
            class: 10,
            text,
            server: server.clone(),
            procedure: String::new(),
            line: 1,
        };
        let out = self.packets.buffer();

        encoder.env_change(
            out,
            &EnvChange::Database {
                new: database.to_string(),
                old: "master".to_string(),
            },
        );
        encoder.message(
            out,
            &info(
                5701,
                2,
                format!("Changed database context to '{database}'."),
            ),
        );
        if encoder.version.has_collation() {
            encoder.env_change(out, &EnvChange::Collation);
        } else {
            encoder.env_change(out, &EnvChange::SortLocale);
            encoder.env_change(out, &EnvChange::SortFlags);
        }
        encoder.env_change(
            out,
            &EnvChange::Language {
                new: "us_english".to_string(),
                old: String::new(),
            },
        );
        encoder.message(
            out,
            &info(
                5703,
                1,
                "Changed language setting to us_english.".to_string(),
            ),
        );
        encoder.loginack(out, self.backend.product_version());
        encoder.env_change(
            out,
            &EnvChange::PacketSize {
                new: packet_size,
                old: DEFAULT_PACKET_SIZE,
            },
        );
        encoder.done(out, DoneKind::Done, 0, 0);
        self.packets.finish(&mut self.writer).await?;
        Ok(())
    }

    async fn serve_requests(
        &mut self,
        session: &mut Option<B::Session>,
    ) -> Result<(), SessionError> {
        while let Some(message) = self.next_message().await? {
            let payload = &message.payload;
            match message.packet_type {
                PacketType::SqlBatch => {
                    let text = self.batch_text(payload)?;
                    if !self.run_batch(session, text, RequestKind::Batch).await? {
                        return Ok(());
                    }
                }
                PacketType::Rpc => {
                    if !self.run_rpc(session, payload).await? {
                        return Ok(());
                    }
                }
                PacketType::TransactionManager => {
                    self.transaction_request(payload).await?;
                    if let Some(session) = session.as_mut() {
                        let depth = u32::from(self.transaction.is_some());
                        self.backend.set_transaction_depth(session, depth);
                    }
                }
                PacketType::Attention => self.acknowledge_attention().await?,
                other => {
                    return Err(SessionError::Unexpected {
                        expected: "a SQL batch, RPC, transaction manager request or attention",
                        got: other.to_byte(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Strips ALL_HEADERS (TDS 7.2 and later) and returns the request body.
    fn request_body<'a>(
        &self,
        packet_type: PacketType,
        payload: &'a [u8],
    ) -> Result<&'a [u8], SessionError> {
        if !self.encoder.version.has_72_layout() {
            return Ok(payload);
        }
        let malformed = |reason: String| SessionError::Malformed {
            packet_type: packet_type.to_byte(),
            reason,
        };
        let length_bytes = payload
            .get(0..4)
            .ok_or_else(|| malformed("ALL_HEADERS is missing".to_string()))?;
        let length = u32::from_le_bytes(length_bytes.try_into().expect("4 bytes")) as usize;
        if length < 4 || length > payload.len() {
            return Err(malformed(format!(
                "ALL_HEADERS length {length} does not fit a {}-byte request",
                payload.len()
            )));
        }
        Ok(&payload[length..])
    }

    fn batch_text(&self, payload: &[u8]) -> Result<String, SessionError> {
        let body = self.request_body(PacketType::SqlBatch, payload)?;
        decode_utf16(body).ok_or_else(|| SessionError::Malformed {
            packet_type: PacketType::SqlBatch.to_byte(),
            reason: "batch text is not valid UTF-16".to_string(),
        })
    }

    /// Runs an RPC. `sp_executesql` becomes a batch, and any other procedure gets the
    /// error SQL Server sends. Returns false when the connection closed meanwhile.
    async fn run_rpc(
        &mut self,
        session: &mut Option<B::Session>,
        payload: &[u8],
    ) -> Result<bool, SessionError> {
        let body = self.request_body(PacketType::Rpc, payload)?;
        let batch = rpc::parse(body, self.encoder.version).and_then(rpc::RpcRequest::into_batch);
        match batch {
            Ok(text) => self.run_batch(session, text, RequestKind::Rpc).await,
            Err(error) => {
                tracing::warn!(
                    instance = self.backend.name(),
                    %error,
                    "RPC request rejected"
                );
                let (number, state, text) = error.sql_message();
                let message = Message {
                    number,
                    state,
                    class: 16,
                    text,
                    server: self.backend.server_name(),
                    procedure: String::new(),
                    line: 1,
                };
                let encoder = self.encoder;
                encoder.message(self.packets.buffer(), &message);
                encoder.done(self.packets.buffer(), DoneKind::Proc, DONE_ERROR, 0);
                self.packets.finish(&mut self.writer).await?;
                Ok(true)
            }
        }
    }

    /// Runs one batch on a blocking thread and streams its reply. Returns false when the
    /// connection closed or the simulator shuts down while it ran.
    async fn run_batch(
        &mut self,
        session: &mut Option<B::Session>,
        sql: String,
        kind: RequestKind,
    ) -> Result<bool, SessionError> {
        let owned = session.take().ok_or(SessionError::EnginePanicked)?;
        let spid = self.backend.spid(&owned);
        tracing::info!(instance = self.backend.name(), spid, batch = %sql, "batch received");

        let (events_tx, mut events) = mpsc::channel(EVENT_QUEUE_LEN);
        let cancel = Arc::new(AtomicBool::new(false));
        let engine = self.spawn_engine(owned, sql, Arc::clone(&cancel), events_tx);

        let mut reply = ReplyStream::new(self.encoder, kind);
        let mut interruption = Interruption::None;
        let mut write_result = Ok(());
        loop {
            tokio::select! {
                event = events.recv() => {
                    let Some(event) = event else { break };
                    if interruption != Interruption::None || write_result.is_err() {
                        continue;
                    }
                    write_result = self.write_event(&mut reply, event, events.is_empty()).await;
                    if write_result.is_err() {
                        cancel.store(true, Ordering::SeqCst);
                    }
                }
                received = self.messages.recv(), if interruption == Interruption::None => {
                    interruption = self.during_batch(received, &cancel);
                }
                _ = self.shutdown.changed(), if interruption != Interruption::Closed => {
                    cancel.store(true, Ordering::SeqCst);
                    interruption = Interruption::Closed;
                }
            }
        }

        let returned = engine.await.map_err(|_| SessionError::EnginePanicked)?;
        let dropped = self.backend.drop_requested(&returned);
        *session = Some(returned);
        write_result?;
        if dropped {
            tracing::info!(
                instance = self.backend.name(),
                spid,
                "engine asked to drop the connection; closing it"
            );
            return Ok(false);
        }
        match interruption {
            Interruption::Closed => Ok(false),
            Interruption::Attention => {
                self.packets.discard();
                self.acknowledge_attention().await?;
                Ok(true)
            }
            Interruption::None => {
                reply.finish(self.packets.buffer());
                self.packets.finish(&mut self.writer).await?;
                Ok(true)
            }
        }
    }

    /// Moves the session onto a blocking thread for the engine; the join handle returns
    /// it. Events go to `events` until the receiver is dropped.
    fn spawn_engine(
        &self,
        mut owned: B::Session,
        sql: String,
        cancel: Arc<AtomicBool>,
        events: mpsc::Sender<ReplyEvent>,
    ) -> JoinHandle<B::Session> {
        let backend = Arc::clone(&self.backend);
        tokio::task::spawn_blocking(move || {
            let mut emit = |event: ReplyEvent| {
                // A closed receiver means the connection is gone and `cancel` is set.
                let _ = events.blocking_send(event);
            };
            backend.execute_batch(&mut owned, &sql, &cancel, &mut emit);
            owned
        })
    }

    /// Handles a client message that arrives while a batch runs.
    fn during_batch(
        &mut self,
        received: Option<Result<ClientMessage, PacketError>>,
        cancel: &AtomicBool,
    ) -> Interruption {
        match received {
            Some(Ok(message)) if message.packet_type == PacketType::Attention => {
                tracing::info!(
                    instance = self.backend.name(),
                    "attention received; cancelling the batch"
                );
                cancel.store(true, Ordering::SeqCst);
                Interruption::Attention
            }
            Some(Ok(message)) => {
                // Without MARS a client waits for the reply; keep the request for later.
                self.pending.push_back(message);
                Interruption::None
            }
            Some(Err(error)) => {
                tracing::warn!(instance = self.backend.name(), %error, "reading from the client failed while a batch ran");
                cancel.store(true, Ordering::SeqCst);
                Interruption::Closed
            }
            None => {
                cancel.store(true, Ordering::SeqCst);
                Interruption::Closed
            }
        }
    }

    /// Encodes one event and sends what fills whole packets. When no other event waits,
    /// an INFO message or a DONE with DONE_MORE goes out at once in a partial packet.
    /// Progress reports and finished result sets then reach the client while a later
    /// statement still runs. The last DONE always waits for `finish`, which sets EOM.
    async fn write_event(
        &mut self,
        reply: &mut ReplyStream,
        event: ReplyEvent,
        queue_empty: bool,
    ) -> Result<(), SessionError> {
        let urgent = match &event {
            ReplyEvent::Info(_) => true,
            ReplyEvent::Done(done) => done.more,
            _ => false,
        };
        reply.encode(self.packets.buffer(), event)?;
        if urgent && queue_empty {
            self.packets.flush(&mut self.writer).await?;
        } else {
            self.packets.write_full_packets(&mut self.writer).await?;
        }
        Ok(())
    }

    /// Acknowledges an attention with a DONE whose status has DONE_ATTN (MS-TDS 2.2.1.7
    /// "Attention"): the client discards everything up to it.
    async fn acknowledge_attention(&mut self) -> Result<(), SessionError> {
        self.encoder
            .done(self.packets.buffer(), DoneKind::Done, DONE_ATTN, 0);
        self.packets.finish(&mut self.writer).await?;
        Ok(())
    }

    /// Handles a transaction manager request (MS-TDS 2.2.6.9). The simulator keeps at
    /// most one transaction descriptor per connection; the caller passes the resulting
    /// depth to the backend.
    /// NOTE: BEGIN TRANSACTION sent as SQL text changes only the engine's count, and no
    /// ENVCHANGE 8 is sent for it.
    async fn transaction_request(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        let body = self.request_body(PacketType::TransactionManager, payload)?;
        let request_type = body
            .get(0..2)
            .map(|bytes| u16::from_le_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| SessionError::Malformed {
                packet_type: PacketType::TransactionManager.to_byte(),
                reason: "request type is missing".to_string(),
            })?;
        let encoder = self.encoder;
        let mut status = 0;
        match request_type {
            TM_BEGIN_XACT => self.begin_transaction(),
            TM_COMMIT_XACT | TM_ROLLBACK_XACT => {
                let commit = request_type == TM_COMMIT_XACT;
                match self.transaction.take() {
                    Some(descriptor) => {
                        let change = if commit {
                            EnvChange::CommitTransaction { descriptor }
                        } else {
                            EnvChange::RollbackTransaction { descriptor }
                        };
                        encoder.env_change(self.packets.buffer(), &change);
                        if begins_new_transaction(body) {
                            self.begin_transaction();
                        }
                    }
                    None => {
                        status = DONE_ERROR;
                        let message = self.no_transaction_error(commit);
                        encoder.message(self.packets.buffer(), &message);
                    }
                }
            }
            other => {
                tracing::warn!(
                    instance = self.backend.name(),
                    request_type = other,
                    "transaction manager request not supported; answered with DONE only"
                );
            }
        }
        encoder.done(self.packets.buffer(), DoneKind::Done, status, 0);
        self.packets.finish(&mut self.writer).await?;
        Ok(())
    }

    fn begin_transaction(&mut self) {
        let descriptor = self.next_transaction;
        self.next_transaction += 1;
        self.transaction = Some(descriptor);
        self.encoder.env_change(
            self.packets.buffer(),
            &EnvChange::BeginTransaction { descriptor },
        );
    }

    /// Messages 3902 and 3903, SQL Server's errors for COMMIT and ROLLBACK without a
    /// transaction.
    fn no_transaction_error(&self, commit: bool) -> Message {
        let (number, statement) = if commit {
            (3902, "COMMIT")
        } else {
            (3903, "ROLLBACK")
        };
        Message {
            number,
            state: 1,
            class: 16,
            text: format!(
                "The {statement} TRANSACTION request has no corresponding BEGIN TRANSACTION."
            ),
            server: self.backend.server_name(),
            procedure: String::new(),
            line: 1,
        }
    }
}

/// Transaction manager request types (MS-TDS 2.2.6.9).
const TM_BEGIN_XACT: u16 = 5;
const TM_COMMIT_XACT: u16 = 7;
const TM_ROLLBACK_XACT: u16 = 8;

/// Returns true when a commit or rollback request also begins a new transaction
/// (fBeginXact, bit 0 of the flags byte after the transaction name).
fn begins_new_transaction(body: &[u8]) -> bool {
    let Some(&name_length) = body.get(2) else {
        return false;
    };
    let flags_at = 3 + usize::from(name_length) * 2;
    body.get(flags_at).is_some_and(|flags| flags & 0x01 != 0)
}

/// Packet size after LOGIN7: the client's request within SQL Server's limits, or the
/// default when the client sends 0.
fn negotiated_packet_size(requested: u32) -> usize {
    if requested == 0 {
        return DEFAULT_PACKET_SIZE;
    }
    (requested as usize).clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE)
}

/// Encodes the events of one request and tracks what its end needs.
struct ReplyStream {
    encoder: TokenEncoder,
    kind: RequestKind,
    columns: Vec<Column>,
    /// True once a statement failed, for DONEPROC's DONE_ERROR.
    failed: bool,
    /// The last DONE-family status written, to end the request correctly.
    last_done_more: Option<bool>,
}

impl ReplyStream {
    fn new(encoder: TokenEncoder, kind: RequestKind) -> ReplyStream {
        ReplyStream {
            encoder,
            kind,
            columns: Vec::new(),
            failed: false,
            last_done_more: None,
        }
    }

    fn encode(&mut self, out: &mut BytesMut, event: ReplyEvent) -> Result<(), SessionError> {
        match event {
            ReplyEvent::Columns(columns) => {
                self.encoder.colmetadata(out, &columns);
                self.columns = columns;
            }
            ReplyEvent::Row(values) => self.encoder.row(out, &self.columns, &values)?,
            ReplyEvent::Info(message) => self.encoder.message(out, &message),
            ReplyEvent::Error(message) => {
                self.failed = true;
                self.encoder.message(out, &message);
            }
            ReplyEvent::Done(done) => self.done(out, done),
            ReplyEvent::DatabaseChanged { old, new } => {
                self.encoder
                    .env_change(out, &EnvChange::Database { new, old });
            }
        }
        Ok(())
    }

    fn done(&mut self, out: &mut BytesMut, done: Done) {
        let mut status = 0;
        if done.error {
            status |= DONE_ERROR;
            self.failed = true;
        }
        if done.row_count.is_some() {
            status |= DONE_COUNT;
        }
        let (kind, more) = match self.kind {
            RequestKind::Batch => (DoneKind::Done, done.more),
            // DONEPROC always follows, so every DONEINPROC has more to come.
            RequestKind::Rpc => (DoneKind::InProc, true),
        };
        if more {
            status |= DONE_MORE;
        }
        self.encoder
            .done(out, kind, status, done.row_count.unwrap_or(0));
        self.last_done_more = Some(more);
    }

    /// Ends the request: RETURNSTATUS and DONEPROC after an RPC, or a final DONE when
    /// the batch sent none or left DONE_MORE set on its last one.
    fn finish(&self, out: &mut BytesMut) {
        match self.kind {
            RequestKind::Rpc => {
                self.encoder.return_status(out, 0);
                let status = if self.failed { DONE_ERROR } else { 0 };
                self.encoder.done(out, DoneKind::Proc, status, 0);
            }
            RequestKind::Batch => {
                if self.last_done_more != Some(false) {
                    self.encoder.done(out, DoneKind::Done, 0, 0);
                }
            }
        }
    }
}
