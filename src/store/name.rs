//! File and directory names in the store: the reversible name encoding and the layout of
//! backup paths.

use sha2::{Digest, Sha256};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use crate::backup::BackupType;

/// Windows device names. Windows opens the device instead of a file or directory with this
/// name, whatever the case ("Naming Files, Paths, and Namespaces" in the Win32 docs).
const WINDOWS_DEVICE_NAMES: [&str; 24] = [
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// UTC timestamp in backup file names, with milliseconds so that two log backups of one
/// database in the same second get different names.
const FILE_TIMESTAMP: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:3]Z");

/// Encodes a database (or any) name for a file or directory name.
///
/// The result is reversible with [`decode_name`], distinct for distinct names, valid on
/// Windows and Linux, and free of case-folding collisions, so a store copied to a
/// case-insensitive file system keeps every name apart:
/// - `[a-z0-9_-]` is kept;
/// - ASCII upper case `X` becomes `^x`;
/// - every other byte of the UTF-8 form becomes `%xx` (lower-case hex), which covers
///   spaces, dots, quotes, brackets, slashes and non-ASCII characters;
/// - a name that would equal a Windows device name (`con`, `prn`, `aux`, `nul`, `com0`-`com9`,
///   `lpt0`-`lpt9`) gets its first character %-encoded (`con` becomes `%63on`).
///
/// The empty name encodes to the empty string, which [`crate::store::Store::begin`] rejects
/// as a path component. SQL Server does not allow an empty database name.
///
/// A name of 128 non-ASCII characters encodes to over 1,000 bytes, above the 255-byte
/// component limit of most file systems, so paths use [`path_name`], which shortens.
pub fn encode_name(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len());
    for byte in name.bytes() {
        push_encoded_byte(&mut encoded, byte);
    }
    if WINDOWS_DEVICE_NAMES.contains(&encoded.as_str()) {
        let first = encoded.as_bytes()[0];
        encoded.replace_range(0..1, &percent_encode(first));
    }
    encoded
}

/// Decodes a name made by [`encode_name`].
///
/// Returns `None` for any text that `encode_name` never produces (upper-case hex, a kept
/// byte written as `%xx`, a bare upper-case letter, invalid UTF-8), so every stored name
/// has exactly one spelling.
pub fn decode_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'^' => {
                let letter = *bytes.get(index + 1)?;
                if !letter.is_ascii_lowercase() {
                    return None;
                }
                decoded.push(letter.to_ascii_uppercase());
                index += 2;
            }
            b'%' => {
                let hex = encoded.get(index + 1..index + 3)?;
                decoded.push(u8::from_str_radix(hex, 16).ok()?);
                index += 3;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    let name = String::from_utf8(decoded).ok()?;
    // Checking the round trip rejects every non-canonical spelling in one place.
    (encode_name(&name) == encoded).then_some(name)
}

/// Builds the file name of one backup: `{database}_{type}_{YYYYMMDDTHHMMSS.mmmZ}.{bak|trn}`,
/// with the database name encoded by [`encode_name`] and the time in UTC.
pub fn backup_file_name(database: &str, backup_type: BackupType, at: OffsetDateTime) -> String {
    let database = path_name(database);
    let timestamp = at
        .to_offset(UtcOffset::UTC)
        .format(FILE_TIMESTAMP)
        .expect("the timestamp format has only numeric fields, which always format");
    format!(
        "{}_{}_{}.{}",
        database,
        backup_type.as_str(),
        timestamp,
        backup_type.file_extension()
    )
}

/// Builds the file name of media family `family` of a backup striped over `count` files:
/// the one-file name with `_{family}of{count}` before the extension, such as
/// `sales_full_20240304T230203.456Z_2of4.bak`. With `count` 1 it returns `file_name`
/// unchanged, so a backup on one file keeps its usual name.
///
/// The families of one backup share the rest of the name, so they sort together, and the
/// part is digits and ASCII letters only, so it cannot interact with the encoded database
/// name before it.
pub fn family_file_name(file_name: &str, family: u32, count: u32) -> String {
    if count <= 1 {
        return file_name.to_string();
    }
    match file_name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}_{family}of{count}.{extension}"),
        None => format!("{file_name}_{family}of{count}"),
    }
}

/// Splits a `_{family}of{count}` part written by [`family_file_name`] off the end of a
/// file name's stem. A stem without a valid part is returned unchanged.
fn strip_family_part(stem: &str) -> &str {
    let Some((rest, part)) = stem.rsplit_once('_') else {
        return stem;
    };
    let Some((family, count)) = part.split_once("of") else {
        return stem;
    };
    let number = |text: &str| {
        let canonical = !text.is_empty()
            && !text.starts_with('0')
            && text.bytes().all(|byte| byte.is_ascii_digit());
        canonical.then(|| text.parse::<u32>().ok()).flatten()
    };
    match (number(family), number(count)) {
        (Some(family), Some(count)) if count > 1 && (1..=count).contains(&family) => rest,
        _ => stem,
    }
}

/// Reads a file name that [`backup_file_name`] made, or a family name that
/// [`family_file_name`] made from one, back into its backup type and UTC time.
///
/// Returns `None` for any other name, so that callers never touch files bakfleet did not
/// name.
pub fn parse_backup_file_name(name: &str) -> Option<(BackupType, OffsetDateTime)> {
    let (stem, extension) = name.rsplit_once('.')?;
    let stem = strip_family_part(stem);
    let (rest, fraction) = stem.rsplit_once('.')?;
    let (rest, seconds) = rest.rsplit_once('_')?;
    let (database, type_text) = rest.rsplit_once('_')?;
    let backup_type: BackupType = type_text.parse().ok()?;
    if database.is_empty()
        || backup_type.as_str() != type_text
        || backup_type.file_extension() != extension
    {
        return None;
    }
    let at =
        time::PrimitiveDateTime::parse(&format!("{seconds}.{fraction}"), FILE_TIMESTAMP).ok()?;
    Some((backup_type, at.assume_utc()))
}

/// Builds the store path of one backup: `{instance}/{encoded database}/{type}/{file name}`.
///
/// The instance name is used as given because fleet validation restricts it to a plain
/// path component. `Store::begin` rejects the path if it is not.
pub fn backup_rel_path(
    instance: &str,
    database: &str,
    backup_type: BackupType,
    file_name: &str,
) -> String {
    format!(
        "{}/{}/{}/{}",
        instance,
        path_name(database),
        backup_type.as_str(),
        file_name
    )
}

/// Longest encoded name used whole in a path. File names add about 30 bytes (type,
/// timestamp, extension), a media family part up to 7 more (`_64of64`), and temp files
/// about 45 more, and most file systems allow 255.
const MAX_PATH_NAME_BYTES: usize = 160;

/// Bytes of the encoded name kept in front of the hash when a name is shortened.
const SHORTENED_PREFIX_BYTES: usize = 140;

/// Encodes `name` for a path, shortening it when the encoding is too long.
///
/// A shortened name keeps the start of the encoding (never cutting a `%xx` or `^x`
/// escape), then `~` and 16 hex digits of the name's SHA-256. [`encode_name`] never writes
/// `~`, so a shortened name cannot equal a whole one, and [`decode_name`] rejects it: the
/// catalogue keeps the exact name. SQL Server allows 128-character names, which can encode
/// to over 1,000 bytes.
pub fn path_name(name: &str) -> String {
    let encoded = encode_name(name);
    if encoded.len() <= MAX_PATH_NAME_BYTES {
        return encoded;
    }
    let bytes = encoded.as_bytes();
    let splits_escape =
        |cut: usize| matches!(bytes[cut - 1], b'^' | b'%') || (cut >= 2 && bytes[cut - 2] == b'%');
    let mut cut = SHORTENED_PREFIX_BYTES;
    while cut > 0 && splits_escape(cut) {
        cut -= 1;
    }
    let digest = Sha256::digest(name.as_bytes());
    format!("{}~{}", &encoded[..cut], &hex::encode(digest)[..16])
}

fn push_encoded_byte(encoded: &mut String, byte: u8) {
    match byte {
        b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => encoded.push(byte as char),
        b'A'..=b'Z' => {
            encoded.push('^');
            encoded.push(byte.to_ascii_lowercase() as char);
        }
        _ => encoded.push_str(&percent_encode(byte)),
    }
}

fn percent_encode(byte: u8) -> String {
    format!("%{byte:02x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use time::macros::datetime;

    #[test]
    fn encode_keeps_plain_lower_case() {
        assert_eq!(encode_name("sales_2024-q1"), "sales_2024-q1");
    }

    #[test]
    fn encode_marks_upper_case_letters() {
        assert_eq!(encode_name("Sales"), "^sales");
        assert_eq!(encode_name("SALES"), "^s^a^l^e^s");
    }

    #[test]
    fn encode_separates_case_pairs() {
        let pairs = [("Sales", "sales"), ("ABC", "abc"), ("aB", "Ab")];
        for (left, right) in pairs {
            let left_encoded = encode_name(left);
            let right_encoded = encode_name(right);
            assert_ne!(
                left_encoded.to_lowercase(),
                right_encoded.to_lowercase(),
                "{left:?} and {right:?} must differ after case folding"
            );
        }
    }

    #[test]
    fn encode_escapes_quotes_brackets_spaces() {
        assert_eq!(encode_name("a]b"), "a%5db");
        assert_eq!(encode_name("o'brien"), "o%27brien");
        assert_eq!(encode_name("my db"), "my%20db");
        assert_eq!(encode_name("[x]"), "%5bx%5d");
        assert_eq!(encode_name("a\"b"), "a%22b");
    }

    #[test]
    fn encode_escapes_separators_and_dots() {
        assert_eq!(encode_name("."), "%2e");
        assert_eq!(encode_name(".."), "%2e%2e");
        assert_eq!(encode_name("a/b\\c"), "a%2fb%5cc");
        assert_eq!(encode_name("name."), "name%2e");
        assert_eq!(encode_name(".hidden"), "%2ehidden");
        assert_eq!(encode_name("a.b"), "a%2eb");
    }

    #[test]
    fn encode_escapes_non_ascii_bytes() {
        assert_eq!(encode_name("café"), "caf%c3%a9");
        assert_eq!(encode_name("日"), "%e6%97%a5");
        assert_eq!(encode_name("\u{0}"), "%00");
    }

    #[test]
    fn encode_escapes_windows_device_names() {
        assert_eq!(encode_name("con"), "%63on");
        assert_eq!(encode_name("nul"), "%6eul");
        assert_eq!(encode_name("com1"), "%63om1");
        assert_eq!(encode_name("lpt9"), "%6cpt9");
        assert_eq!(encode_name("CON"), "^c^o^n");
        assert_eq!(encode_name("con1"), "con1");
        assert_eq!(encode_name("console"), "console");
        assert_eq!(encode_name("con.txt"), "con%2etxt");
    }

    #[test]
    fn encode_empty_name_is_empty() {
        assert_eq!(encode_name(""), "");
        assert_eq!(decode_name(""), Some(String::new()));
    }

    #[test]
    fn decode_reverses_examples() {
        for name in [
            "a]b", "o'brien", "my db", "Sales", "café", "con", ".", "..", "x.", "%^",
        ] {
            assert_eq!(decode_name(&encode_name(name)).as_deref(), Some(name));
        }
    }

    #[test]
    fn decode_rejects_non_canonical_text() {
        let cases = [
            ("%61", "kept byte written as hex"),
            ("%5D", "upper-case hex"),
            ("A", "bare upper-case letter"),
            ("^A", "caret before upper case"),
            ("^", "caret at the end"),
            ("%2", "truncated escape"),
            ("%zz", "escape that is not hex"),
            ("con", "device name left plain"),
            ("%ff", "invalid UTF-8"),
            ("a b", "space left plain"),
            ("a.b", "dot left plain"),
        ];
        for (text, why) in cases {
            assert_eq!(decode_name(text), None, "{text:?} ({why}) must be rejected");
        }
    }

    #[test]
    fn round_trip_random_names() {
        let alphabet: Vec<char> = "aAzZ09_-. '\"[]%^/\\:*?<>|é日\u{0}\u{1F600}cCoOnNuUlL"
            .chars()
            .collect();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..5000 {
            let length = rng.random_range(0..12);
            let name: String = (0..length)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            let encoded = encode_name(&name);
            assert_eq!(decode_name(&encoded).as_deref(), Some(name.as_str()));
            assert!(is_portable_component(&encoded), "{encoded:?} from {name:?}");
        }
    }

    #[test]
    fn round_trip_distinct_names_stay_distinct() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashMap::new();
        for _ in 0..20000 {
            let length = rng.random_range(0..4);
            let name: String = (0..length)
                .map(|_| ['a', 'A', '%', '^', '6', '1', 'c', 'o', 'n'][rng.random_range(0..9)])
                .collect();
            let folded = encode_name(&name).to_lowercase();
            if let Some(previous) = seen.insert(folded.clone(), name.clone()) {
                assert_eq!(
                    previous, name,
                    "{previous:?} and {name:?} collide as {folded:?}"
                );
            }
        }
    }

    #[test]
    fn file_name_uses_utc_milliseconds() {
        let at = datetime!(2024-03-05 01:02:03.456 +02:00);
        assert_eq!(
            backup_file_name("Sales DB", BackupType::Full, at),
            "^sales%20^d^b_full_20240304T230203.456Z.bak"
        );
        assert_eq!(
            backup_file_name("sales", BackupType::Log, at),
            "sales_log_20240304T230203.456Z.trn"
        );
    }

    #[test]
    fn family_name_marks_each_stripe() {
        let at = datetime!(2024-03-05 01:02:03.456 UTC);
        let base = backup_file_name("Sales DB", BackupType::Full, at);
        let names: Vec<String> = (1..=4).map(|k| family_file_name(&base, k, 4)).collect();
        assert_eq!(names[0], "^sales%20^d^b_full_20240305T010203.456Z_1of4.bak");
        assert_eq!(names[3], "^sales%20^d^b_full_20240305T010203.456Z_4of4.bak");
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), 4, "{names:?}");
        for name in &names {
            assert_eq!(
                parse_backup_file_name(name),
                Some((BackupType::Full, at)),
                "{name}"
            );
        }
        assert_eq!(family_file_name(&base, 1, 1), base);
    }

    #[test]
    fn family_name_keeps_hostile_names_portable() {
        let at = datetime!(2024-03-05 01:02:03.456 UTC);
        for database in [
            "con",
            "a/../b",
            "x_1of2",
            "..",
            "日本 'db'",
            &"Ä".repeat(128),
        ] {
            let base = backup_file_name(database, BackupType::Log, at);
            let name = family_file_name(&base, 64, 64);
            assert!(is_portable_component(&name), "{name:?} from {database:?}");
            assert!(name.len() <= 255, "{} bytes for {database:?}", name.len());
            assert!(name.ends_with("_64of64.trn"), "{name}");
            assert_eq!(
                parse_backup_file_name(&name),
                Some((BackupType::Log, at)),
                "{name}"
            );
        }
    }

    #[test]
    fn family_part_must_be_canonical() {
        let stem = "sales_full_20240305T010203.456Z";
        for part in ["_0of4", "_5of4", "_1of1", "_01of4", "_1of", "_of4", "_xof4"] {
            let name = format!("{stem}{part}.bak");
            assert_eq!(parse_backup_file_name(&name), None, "{name}");
        }
    }

    #[test]
    fn rel_path_encodes_database_only() {
        assert_eq!(
            backup_rel_path("sales-prod", "a]b", BackupType::Diff, "f.bak"),
            "sales-prod/a%5db/diff/f.bak"
        );
    }

    /// Checks whether `text` is a file name component valid on both Windows and Linux.
    fn is_portable_component(text: &str) -> bool {
        let forbidden = |c: char| "<>:\"/\\|?*".contains(c) || c.is_control() || c == ' ';
        !text.contains(forbidden)
            && !text.ends_with('.')
            && !WINDOWS_DEVICE_NAMES.contains(&text.to_lowercase().as_str())
    }
}
