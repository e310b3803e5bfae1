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
#[cfg(test)]
const ENCRYPT_OFF: u8 = 0x00;
const ENCRYPT_ON: u8 = 0x01;
const ENCRYPT_NOT_SUP: u8 = 0x02;
const ENCRYPT_REQ: u8 = 0x03;

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

/// Builds the server's PRELOGIN reply: VERSION, ENCRYPTION = ENCRYPT_NOT_SUP (no TLS in
/// this simulator), INSTOPT = 0 (instance name accepted), an empty THREADID as SQL
/// Server sends it, and MARS = 0 (MARS is not supported).
pub fn reply(product_version: (u8, u8, u16)) -> BytesMut {
    let (major, minor, build) = product_version;
    let mut version = Vec::with_capacity(6);
    version.push(major);
    version.push(minor);
    version.extend_from_slice(&build.to_be_bytes());
    version.extend_from_slice(&0u16.to_be_bytes()); // sub-build

    let options: [(u8, Vec<u8>); 5] = [
        (OPTION_VERSION, version),
        (OPTION_ENCRYPTION, vec![ENCRYPT_NOT_SUP]),
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
    fn reply_announces_no_encryption() {
        let reply = reply((16, 0, 4135));
        let parsed = parse(&reply).unwrap();
        assert_eq!(parsed.encryption, Some(ENCRYPT_NOT_SUP));
        // VERSION data starts right after the 26-byte option table.
        assert_eq!(&reply[26..32], &[16, 0, 0x10, 0x27, 0, 0]);
    }
}
