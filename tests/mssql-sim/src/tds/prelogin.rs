//! PRELOGIN: the client's encryption request and the server's reply (MS-TDS 2.2.6.5
//! "PRELOGIN").

use bytes::{BufMut, BytesMut};

const OPTION_VERSION: u8 = 0x00;
const OPTION_ENCRYPTION: u8 = 0x01;
const OPTION_INSTOPT: u8 = 0x02;
const OPTION_THREADID: u8 = 0x03;
const OPTION_MARS: u8 = 0x04;
const OPTION_TERMINATOR: u8 = 0xFF;

/// ENCRYPTION values (MS-TDS 2.2.6.5).
pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;

/// What the simulator needs from a client's PRELOGIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientPreLogin {
    /// The client's ENCRYPTION byte; `None` when the option is missing.
    pub encryption: Option<u8>,
}

impl ClientPreLogin {
    /// True when the client insists on TLS (ENCRYPT_ON or ENCRYPT_REQ).
    ///
    /// MS-TDS 2.2.6.5 "PRELOGIN" lists the outcome of each client and server ENCRYPTION
    /// pair: a client that sends ENCRYPT_ON or ENCRYPT_REQ to a server that answers
    /// ENCRYPT_NOT_SUP gets the connection terminated. The high bit (0x80, client
    /// certificate authentication) is masked off before the check.
    pub fn requires_encryption(&self) -> bool {
        matches!(
            self.encryption.map(|byte| byte & 0x7F),
            Some(ENCRYPT_ON) | Some(ENCRYPT_REQ)
        )
    }
}

/// What the server does after its PRELOGIN reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No TLS: LOGIN7 and everything after it travel in plain text.
    Plain,
    /// TLS for the LOGIN7 packet only, then plain text again.
    LoginOnly,
    /// TLS for the rest of the session.
    Full,
    /// The client and server cannot agree; the server closes the connection.
    Terminate,
}

/// The server's ENCRYPTION answer and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    pub answer: u8,
    pub outcome: Outcome,
}

/// Decides the server's ENCRYPTION answer from the client's byte, whether the server
/// has a certificate, and whether it forces encryption.
///
/// The pairs follow the table in MS-TDS 2.2.6.5 "PRELOGIN": a server that allows
/// encryption answers ENCRYPT_OFF to ENCRYPT_OFF (login-only TLS) and ENCRYPT_ON to
/// ENCRYPT_ON or ENCRYPT_REQ; a server that forces it answers ENCRYPT_REQ, and a client
/// that then said ENCRYPT_NOT_SUP is disconnected. A missing option counts as
/// ENCRYPT_NOT_SUP.
pub fn negotiate(client: &ClientPreLogin, has_certificate: bool, force: bool) -> Negotiation {
    let client_byte = client
        .encryption
        .map_or(ENCRYPT_NOT_SUP, |byte| byte & 0x7F);
    let (answer, outcome) = match (has_certificate, force, client_byte) {
        (false, _, ENCRYPT_ON | ENCRYPT_REQ) => (ENCRYPT_NOT_SUP, Outcome::Terminate),
        (false, _, _) => (ENCRYPT_NOT_SUP, Outcome::Plain),
        (true, true, ENCRYPT_NOT_SUP) => (ENCRYPT_REQ, Outcome::Terminate),
        (true, true, _) => (ENCRYPT_REQ, Outcome::Full),
        (true, false, ENCRYPT_OFF) => (ENCRYPT_OFF, Outcome::LoginOnly),
        (true, false, ENCRYPT_ON | ENCRYPT_REQ) => (ENCRYPT_ON, Outcome::Full),
        (true, false, _) => (ENCRYPT_NOT_SUP, Outcome::Plain),
    };
    Negotiation { answer, outcome }
}

/// Errors in a client's PRELOGIN message.
#[derive(Debug, thiserror::Error)]
pub enum PreLoginError {
    #[error("PRELOGIN option table ends before its terminator (0xFF)")]
    Truncated,
    #[error("PRELOGIN option 0x{option:02X} points past the end of the message (offset {offset}, length {length})")]
    OutOfRange {
        option: u8,
        offset: usize,
        length: usize,
    },
}

/// Parses a client's PRELOGIN payload.
///
/// # Errors
/// The option table has no terminator or an option points outside the payload.
pub fn parse(payload: &[u8]) -> Result<ClientPreLogin, PreLoginError> {
    let mut encryption = None;
    let mut position = 0;
    loop {
        let option = *payload.get(position).ok_or(PreLoginError::Truncated)?;
        if option == OPTION_TERMINATOR {
            break;
        }
        let entry = payload
            .get(position + 1..position + 5)
            .ok_or(PreLoginError::Truncated)?;
        let offset = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
        let length = usize::from(u16::from_be_bytes([entry[2], entry[3]]));
        let data = payload
            .get(offset..offset + length)
            .ok_or(PreLoginError::OutOfRange {
                option,
                offset,
                length,
            })?;
        if option == OPTION_ENCRYPTION {
            encryption = data.first().copied();
        }
        position += 5;
    }
    Ok(ClientPreLogin { encryption })
}

/// Builds the server's PRELOGIN reply: VERSION, ENCRYPTION = `encryption`, INSTOPT = 0
/// (instance name accepted), an empty THREADID as SQL Server sends it, and MARS = 0
/// (MARS is not supported).
pub fn reply(product_version: (u8, u8, u16), encryption: u8) -> BytesMut {
    let (major, minor, build) = product_version;
    let mut version = Vec::with_capacity(6);
    version.push(major);
    version.push(minor);
    version.extend_from_slice(&build.to_be_bytes());
    version.extend_from_slice(&0u16.to_be_bytes()); // sub-build

    let options: [(u8, Vec<u8>); 5] = [
        (OPTION_VERSION, version),
        (OPTION_ENCRYPTION, vec![encryption]),
        (OPTION_INSTOPT, vec![0]),
        (OPTION_THREADID, Vec::new()),
        (OPTION_MARS, vec![0]),
    ];

    let table_len = options.len() * 5 + 1;
    let mut out = BytesMut::new();
    let mut offset = table_len;
    for (option, data) in &options {
        out.put_u8(*option);
        out.put_u16(u16::try_from(offset).expect("PRELOGIN reply is small"));
        out.put_u16(u16::try_from(data.len()).expect("PRELOGIN reply is small"));
        offset += data.len();
    }
    out.put_u8(OPTION_TERMINATOR);
    for (_, data) in &options {
        out.put_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client PRELOGIN with VERSION and ENCRYPTION options.
    fn client_prelogin(encryption: u8) -> Vec<u8> {
        let mut out = vec![0x00, 0x00, 0x0B, 0x00, 0x06];
        out.extend_from_slice(&[0x01, 0x00, 0x11, 0x00, 0x01]);
        out.push(0xFF);
        out.extend_from_slice(&[16, 0, 0, 0, 0, 0]);
        out.push(encryption);
        out
    }

    #[test]
    fn parse_reads_encryption_byte() {
        let prelogin = parse(&client_prelogin(ENCRYPT_OFF)).unwrap();
        assert_eq!(prelogin.encryption, Some(ENCRYPT_OFF));
        assert!(!prelogin.requires_encryption());
    }

    #[test]
    fn parse_flags_required_encryption() {
        assert!(parse(&client_prelogin(ENCRYPT_ON))
            .unwrap()
            .requires_encryption());
        assert!(parse(&client_prelogin(ENCRYPT_REQ))
            .unwrap()
            .requires_encryption());
        assert!(!parse(&client_prelogin(ENCRYPT_NOT_SUP))
            .unwrap()
            .requires_encryption());
    }

    #[test]
    fn parse_rejects_option_past_end() {
        let mut payload = client_prelogin(ENCRYPT_OFF);
        payload.truncate(payload.len() - 1);
        assert!(matches!(
            parse(&payload),
            Err(PreLoginError::OutOfRange { option: 0x01, .. })
        ));
    }

    #[test]
    fn negotiate_follows_mstds_table() {
        let cases = [
            // (client byte, certificate, force, answer, outcome)
            (ENCRYPT_OFF, false, false, ENCRYPT_NOT_SUP, Outcome::Plain),
            (
                ENCRYPT_ON,
                false,
                false,
                ENCRYPT_NOT_SUP,
                Outcome::Terminate,
            ),
            (
                ENCRYPT_NOT_SUP,
                true,
                false,
                ENCRYPT_NOT_SUP,
                Outcome::Plain,
            ),
            (ENCRYPT_OFF, true, false, ENCRYPT_OFF, Outcome::LoginOnly),
            (ENCRYPT_ON, true, false, ENCRYPT_ON, Outcome::Full),
            (ENCRYPT_REQ, true, false, ENCRYPT_ON, Outcome::Full),
            (
                ENCRYPT_OFF | 0x80,
                true,
                false,
                ENCRYPT_OFF,
                Outcome::LoginOnly,
            ),
            (ENCRYPT_OFF, true, true, ENCRYPT_REQ, Outcome::Full),
            (ENCRYPT_ON, true, true, ENCRYPT_REQ, Outcome::Full),
            (ENCRYPT_NOT_SUP, true, true, ENCRYPT_REQ, Outcome::Terminate),
        ];
        for (client, certificate, force, answer, outcome) in cases {
            let prelogin = ClientPreLogin {
                encryption: Some(client),
            };
            let negotiation = negotiate(&prelogin, certificate, force);
            let case = format!("client {client:#04x}, certificate {certificate}, force {force}");
            assert_eq!(negotiation.answer, answer, "{case}");
            assert_eq!(negotiation.outcome, outcome, "{case}");
        }
    }

    #[test]
    fn reply_announces_no_encryption() {
        let reply = reply((16, 0, 4135), ENCRYPT_NOT_SUP);
        let parsed = parse(&reply).unwrap();
        assert_eq!(parsed.encryption, Some(ENCRYPT_NOT_SUP));
        // VERSION data starts right after the 26-byte option table.
        assert_eq!(&reply[26..32], &[16, 0, 0x10, 0x27, 0, 0]);
    }
}
