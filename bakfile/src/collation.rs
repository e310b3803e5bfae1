//! The database collation as a backup header stores it: the 5-byte collation of the TDS
//! protocol (LCID, comparison flags, version, sort id), and its name where it is known.

use std::fmt;

/// Comparison flag bits, least significant first, from "Collation Rule Definition" in
/// Microsoft's "[MS-TDS]: Tabular Data Stream Protocol".
const IGNORE_CASE: u8 = 0x01;
const IGNORE_ACCENT: u8 = 0x02;
const IGNORE_KANA: u8 = 0x04;
const IGNORE_WIDTH: u8 = 0x08;
const BINARY: u8 = 0x10;
const BINARY2: u8 = 0x20;
const UTF8: u8 = 0x40;

/// A database collation as the SCIN record stores it.
///
/// The layout of the 4-byte info word and the sort id is documented in MS-TDS; that SCIN
/// stores it at +0xD8 and +0xDC is observed (SQL Server 2008 R2 to 2016 samples, three
/// distinct collations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Collation {
    /// Windows locale id (low 20 bits of the info word), for example 1033 for en-US.
    pub lcid: u32,
    /// Comparison flags: 0x01 ignore case, 0x02 ignore accents, 0x04 ignore kana type,
    /// 0x08 ignore width, 0x10 binary, 0x20 binary code point, 0x40 UTF-8.
    pub comparison_flags: u8,
    /// Collation version (top 4 bits of the info word): 0 for the original Windows
    /// collations, 1 for the `_100` ones, 2 for the `_140` ones.
    pub version: u8,
    /// SQL Server sort order id: non-zero for the `SQL_` collations, 0 for Windows ones.
    pub sort_id: u8,
}

impl Default for Collation {
    /// SQL Server's default collation on US English installations,
    /// SQL_Latin1_General_CP1_CI_AS.
    fn default() -> Self {
        Collation::from_parts(0x00D0_0409, 52)
    }
}

impl Collation {
    /// Splits the 4-byte info word of the TDS collation and pairs it with the sort id.
    pub fn from_parts(info: u32, sort_id: u8) -> Collation {
        Collation {
            lcid: info & 0x000F_FFFF,
            comparison_flags: ((info >> 20) & 0xFF) as u8,
            version: (info >> 28) as u8,
            sort_id,
        }
    }

    /// Returns the 4-byte info word, the inverse of [`Collation::from_parts`].
    pub fn info(self) -> u32 {
        (self.lcid & 0x000F_FFFF)
            | (u32::from(self.comparison_flags) << 20)
            | (u32::from(self.version & 0x0F) << 28)
    }

    /// Returns the collation name when the mapping is known, else `None`.
    ///
    /// SQL collations are named from their sort id; Windows collations from the locale,
    /// the version and the comparison flags. Only the locales in [`windows_prefix`] are
    /// named, so an unknown locale gives `None` and the raw values must be shown.
    pub fn name(self) -> Option<String> {
        if self.sort_id != 0 {
            return sql_collation_name(self.sort_id).map(str::to_string);
        }
        let prefix = windows_prefix(self.lcid)?;
        let version = match self.version {
            0 => "",
            1 => "_100",
            2 => "_140",
            _ => return None,
        };
        let flags = self.comparison_flags;
        let mut name = format!("{prefix}{version}");
        if flags & BINARY2 != 0 {
            name.push_str("_BIN2");
            return Some(name);
        }
        if flags & BINARY != 0 {
            name.push_str("_BIN");
            return Some(name);
        }
        name.push_str(if flags & IGNORE_CASE != 0 {
            "_CI"
        } else {
            "_CS"
        });
        name.push_str(if flags & IGNORE_ACCENT != 0 {
            "_AI"
        } else {
            "_AS"
        });
        if flags & IGNORE_KANA == 0 {
            name.push_str("_KS");
        }
        if flags & IGNORE_WIDTH == 0 {
            name.push_str("_WS");
        }
        if flags & UTF8 != 0 {
            name.push_str("_UTF8");
        }
        Some(name)
    }
}

impl fmt::Display for Collation {
    /// Writes the name, or the raw values when the name is not known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(&name),
            None => write!(
                f,
                "lcid {} flags {:#04x} version {} sort id {}",
                self.lcid, self.comparison_flags, self.version, self.sort_id
            ),
        }
    }
}

/// Names of SQL collations by sort id. Sort id 52 is SQL_Latin1_General_CP1_CI_AS in
/// every sample. NOTE: 51 and 54 follow SQL Server's sort order list and no sample checks
/// them, so other sort ids are shown as raw values.
fn sql_collation_name(sort_id: u8) -> Option<&'static str> {
    match sort_id {
        51 => Some("SQL_Latin1_General_CP1_CS_AS"),
        52 => Some("SQL_Latin1_General_CP1_CI_AS"),
        54 => Some("SQL_Latin1_General_CP1_CI_AI"),
        _ => None,
    }
}

/// Collation designators of common Windows locales, as the "Windows Collation Name
/// (Transact-SQL)" page composes names. Samples confirm 1033 (Latin1_General) and 3082
/// (Modern_Spanish), and locales outside this list are shown as raw values.
fn windows_prefix(lcid: u32) -> Option<&'static str> {
    match lcid {
        1033 => Some("Latin1_General"),
        3082 => Some("Modern_Spanish"),
        1036 => Some("French"),
        1049 => Some("Cyrillic_General"),
        1053 => Some("Finnish_Swedish"),
        1045 => Some("Polish"),
        1029 => Some("Czech"),
        1055 => Some("Turkish"),
        1032 => Some("Greek"),
        1041 => Some("Japanese"),
        2052 => Some("Chinese_PRC"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collation_names_observed_values() {
        assert_eq!(
            Collation::from_parts(0x00D0_0409, 52).name().as_deref(),
            Some("SQL_Latin1_General_CP1_CI_AS")
        );
        assert_eq!(
            Collation::from_parts(0x00D0_0409, 0).name().as_deref(),
            Some("Latin1_General_CI_AS")
        );
        assert_eq!(
            Collation::from_parts(0x00D0_0C0A, 0).name().as_deref(),
            Some("Modern_Spanish_CI_AS")
        );
    }

    #[test]
    fn collation_names_flag_variants() {
        let case_sensitive = Collation::from_parts(0x00C0_0409, 0);
        assert_eq!(
            case_sensitive.name().as_deref(),
            Some("Latin1_General_CS_AS")
        );
        let binary2 = Collation::from_parts(0x1200_0409, 0);
        assert_eq!(binary2.name().as_deref(), Some("Latin1_General_100_BIN2"));
        let kana_width = Collation::from_parts(0x2010_0411, 0);
        assert_eq!(
            kana_width.name().as_deref(),
            Some("Japanese_140_CI_AS_KS_WS")
        );
    }

    #[test]
    fn collation_unknown_shows_raw_values() {
        let unknown = Collation::from_parts(0x00D0_0401, 0);
        assert_eq!(unknown.name(), None);
        assert_eq!(
            unknown.to_string(),
            "lcid 1025 flags 0x0d version 0 sort id 0"
        );
        assert_eq!(unknown.info(), 0x00D0_0401);
    }
}
