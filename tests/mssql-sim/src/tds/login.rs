//! LOGIN7 parsing and TDS version negotiation (MS-TDS 2.2.6.4 "LOGIN7").

/// A TDS version the simulator can speak; the session encodes every token for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TdsVersion {
    V7_0,
    V7_1,
    V7_2,
    V7_3,
    V7_4,
}

impl TdsVersion {
    /// Picks the lower of the client's LOGIN7 version and 7.4. LOGIN7 carries
    /// 0x70000000 for 7.0, 0x71000000 or 0x71000001 for 7.1, 0x72090002 for 7.2,
    /// 0x730A0003 or 0x730B0003 for 7.3, 0x74000004 for 7.4 and 0x08000000 for 8.0;
    /// the top byte decides. Versions before 7.0 get 7.0, the oldest the simulator speaks.
    pub fn negotiate(client_version: u32) -> TdsVersion {
        match client_version >> 24 {
            0x08 => TdsVersion::V7_4,
            0x00..=0x70 => TdsVersion::V7_0,
            0x71 => TdsVersion::V7_1,
            0x72 => TdsVersion::V7_2,
            0x73 => TdsVersion::V7_3,
            _ => TdsVersion::V7_4,
        }
    }

    /// The version LOGINACK carries, written big-endian (MS-TDS 2.2.7.14 "LOGINACK").
    pub fn loginack_version(self) -> u32 {
        match self {
            TdsVersion::V7_0 => 0x0700_0000,
            TdsVersion::V7_1 => 0x0701_0000,
            TdsVersion::V7_2 => 0x7209_0002,
            TdsVersion::V7_3 => 0x730B_0003,
            TdsVersion::V7_4 => 0x7400_0004,
        }
    }

    /// 7.2 added ALL_HEADERS, 8-byte DONE row counts, 4-byte message line numbers and
    /// 4-byte column UserTypes, and PLP (`max`) types.
    pub fn has_72_layout(self) -> bool {
        self >= TdsVersion::V7_2
    }

    /// 7.1 added collations on character types and ENVCHANGE type 7.
    pub fn has_collation(self) -> bool {
        self >= TdsVersion::V7_1
    }
}

impl std::fmt::Display for TdsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            TdsVersion::V7_0 => "7.0",
            TdsVersion::V7_1 => "7.1",
            TdsVersion::V7_2 => "7.2",
            TdsVersion::V7_3 => "7.3",
            TdsVersion::V7_4 => "7.4",
        };
        f.write_str(text)
    }
}

/// The fields of a LOGIN7 message the simulator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login7 {
    /// TDSVersion as the client sent it.
    pub client_version: u32,
    /// PacketSize the client asks for; 0 keeps the server's size.
    pub packet_size: u32,
    pub host_name: String,
    pub user_name: String,
    /// The password after de-obfuscation.
    pub password: String,
    pub app_name: String,
    pub server_name: String,
    pub library_name: String,
    pub language: String,
    pub database: String,
    /// True when the client asks for integrated (SSPI) authentication, which the
    /// simulator does not offer.
    pub integrated_security: bool,
}

/// Errors in a LOGIN7 message.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("LOGIN7 message is {0} bytes, shorter than its 94-byte fixed part")]
    Truncated(usize),
    #[error("LOGIN7 field {field} points past the end of the message (offset {offset}, {length} characters)")]
    OutOfRange {
        field: &'static str,
        offset: usize,
        length: usize,
    },
    #[error("LOGIN7 field {0} is not valid UTF-16")]
    InvalidText(&'static str),
}

/// Length of LOGIN7's fixed part up to and including the offset table of TDS 7.0/7.1
/// (through ibAtchDBFile/cchAtchDBFile).
const FIXED_LEN: usize = 86;

/// OptionFlags2 bit fIntSecurity: the client wants integrated authentication.
const FLAG_INTEGRATED_SECURITY: u8 = 0x80;

/// Parses a LOGIN7 payload.
///
/// # Errors
/// The message is shorter than its fixed part, an offset and length point outside it,
/// or a text field is not UTF-16.
pub fn parse(payload: &[u8]) -> Result<Login7, LoginError> {
    if payload.len() < FIXED_LEN {
        return Err(LoginError::Truncated(payload.len()));
    }
    let field = |name: &'static str, at: usize| text_field(payload, name, at);

    Ok(Login7 {
        client_version: read_u32(payload, 4),
        packet_size: read_u32(payload, 8),
        integrated_security: payload[25] & FLAG_INTEGRATED_SECURITY != 0,
        host_name: field("HostName", 36)?,
        user_name: field("UserName", 40)?,
        password: password_field(payload)?,
        app_name: field("AppName", 48)?,
        server_name: field("ServerName", 52)?,
        library_name: field("CltIntName", 60)?,
        language: field("Language", 64)?,
        database: field("Database", 68)?,
    })
}

fn read_u16(payload: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([payload[at], payload[at + 1]]))
}

fn read_u32(payload: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([
        payload[at],
        payload[at + 1],
        payload[at + 2],
        payload[at + 3],
    ])
}

/// Returns the bytes of the field whose offset and length (in UTF-16 code units) sit at
/// `at` in the offset table.
fn field_bytes<'a>(
    payload: &'a [u8],
    name: &'static str,
    at: usize,
) -> Result<&'a [u8], LoginError> {
    let offset = read_u16(payload, at);
    let length = read_u16(payload, at + 2);
    payload
        .get(offset..offset + length * 2)
        .ok_or(LoginError::OutOfRange {
            field: name,
            offset,
            length,
        })
}

fn text_field(payload: &[u8], name: &'static str, at: usize) -> Result<String, LoginError> {
    decode_utf16(field_bytes(payload, name, at)?).ok_or(LoginError::InvalidText(name))
}

/// Reads the password. The client obfuscates each byte by swapping its two nibbles and
/// then XORing it with 0xA5 (MS-TDS 2.2.6.4); this undoes both steps in reverse order.
fn password_field(payload: &[u8]) -> Result<String, LoginError> {
    let obfuscated = field_bytes(payload, "Password", 44)?;
    let plain: Vec<u8> = obfuscated
        .iter()
        .map(|byte| (byte ^ 0xA5).rotate_left(4))
        .collect();
    decode_utf16(&plain).ok_or(LoginError::InvalidText("Password"))
}

/// Decodes UTF-16LE bytes; `None` when they are not valid UTF-16.
pub fn decode_utf16(bytes: &[u8]) -> Option<String> {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(text: &str) -> Vec<u8> {
        text.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    fn obfuscate(text: &str) -> Vec<u8> {
        utf16(text)
            .into_iter()
            .map(|byte| byte.rotate_left(4) ^ 0xA5)
            .collect()
    }

    /// Builds a TDS 7.4 LOGIN7 with the given user, password and database.
    fn login7(user: &str, password: &str, database: &str) -> Vec<u8> {
        let mut fixed = vec![0u8; 94];
        fixed[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
        fixed[8..12].copy_from_slice(&8000u32.to_le_bytes());
        let mut data = Vec::new();
        let mut put = |fixed: &mut Vec<u8>, at: usize, bytes: Vec<u8>, chars: usize| {
            let offset = 94 + data.len();
            fixed[at..at + 2].copy_from_slice(&u16::try_from(offset).unwrap().to_le_bytes());
            fixed[at + 2..at + 4].copy_from_slice(&u16::try_from(chars).unwrap().to_le_bytes());
            data.extend(bytes);
        };
        put(&mut fixed, 36, utf16("apphost"), 7);
        put(&mut fixed, 40, utf16(user), user.encode_utf16().count());
        put(
            &mut fixed,
            44,
            obfuscate(password),
            password.encode_utf16().count(),
        );
        put(
            &mut fixed,
            68,
            utf16(database),
            database.encode_utf16().count(),
        );
        fixed.extend(data);
        let total = u32::try_from(fixed.len()).unwrap();
        fixed[0..4].copy_from_slice(&total.to_le_bytes());
        fixed
    }

    #[test]
    fn parse_reads_user_password_database() {
        let login = parse(&login7("bakfleet", "Pässw0rd!", "Sales")).unwrap();
        assert_eq!(login.user_name, "bakfleet");
        assert_eq!(login.password, "Pässw0rd!");
        assert_eq!(login.database, "Sales");
        assert_eq!(login.host_name, "apphost");
        assert_eq!(login.packet_size, 8000);
        assert_eq!(
            TdsVersion::negotiate(login.client_version),
            TdsVersion::V7_4
        );
    }

    #[test]
    fn parse_rejects_field_past_end() {
        let mut payload = login7("u", "p", "db");
        payload.truncate(payload.len() - 2);
        assert!(matches!(
            parse(&payload),
            Err(LoginError::OutOfRange {
                field: "Database",
                ..
            })
        ));
    }

    #[test]
    fn parse_rejects_short_message() {
        assert!(matches!(parse(&[0u8; 40]), Err(LoginError::Truncated(40))));
    }

    #[test]
    fn negotiate_picks_lower_version() {
        let cases = [
            (0x7000_0000, TdsVersion::V7_0, 0x0700_0000),
            (0x7100_0001, TdsVersion::V7_1, 0x0701_0000),
            (0x7209_0002, TdsVersion::V7_2, 0x7209_0002),
            (0x730A_0003, TdsVersion::V7_3, 0x730B_0003),
            (0x7400_0004, TdsVersion::V7_4, 0x7400_0004),
            (0x0800_0000, TdsVersion::V7_4, 0x7400_0004),
            (0x0402_0000, TdsVersion::V7_0, 0x0700_0000),
        ];
        for (client, expected, loginack) in cases {
            let version = TdsVersion::negotiate(client);
            assert_eq!(version, expected, "client version 0x{client:08X}");
            assert_eq!(version.loginack_version(), loginack);
        }
    }
}
