//! The database selection of an instance: keywords, exact names and globs, compared
//! without regard to case.

use globset::{GlobBuilder, GlobMatcher};
use toml::Spanned;

use super::error::Diagnostics;
use super::raw::RawDatabases;

/// Databases that SQL Server creates itself and that can be backed up. `tempdb` is left
/// out because it is rebuilt at every start and cannot be backed up ("Back Up and
/// Restore of System Databases (SQL Server)").
pub const SYSTEM_DATABASES: [&str; 3] = ["master", "model", "msdb"];

/// One entry of `include` or `exclude`.
#[derive(Debug, Clone)]
enum Pattern {
    /// `USER_DATABASES`: every database that is not a system database.
    UserDatabases,
    /// `SYSTEM_DATABASES`: master, model and msdb.
    SystemDatabases,
    /// `ALL_DATABASES`: user and system databases.
    AllDatabases,
    /// A name without wildcards, stored in lower case.
    Exact(String),
    /// A name with `*` or `?`; `text` is the pattern as written, for messages.
    Glob { text: String, matcher: GlobMatcher },
}

impl Pattern {
    fn matches(&self, database: &str) -> bool {
        let is_system = is_system_database(database);
        match self {
            Pattern::UserDatabases => !is_system,
            Pattern::SystemDatabases => is_system,
            Pattern::AllDatabases => true,
            Pattern::Exact(name) => database.to_lowercase() == *name,
            Pattern::Glob { matcher, .. } => matcher.is_match(database),
        }
    }

    fn text(&self) -> &str {
        match self {
            Pattern::UserDatabases => "USER_DATABASES",
            Pattern::SystemDatabases => "SYSTEM_DATABASES",
            Pattern::AllDatabases => "ALL_DATABASES",
            Pattern::Exact(name) => name,
            Pattern::Glob { text, .. } => text,
        }
    }
}

/// The `databases` table of an instance: a database is selected when an `include`
/// pattern matches it and no `exclude` pattern does. `tempdb` is never selected.
#[derive(Debug, Clone)]
pub struct DatabaseSelection {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
}

impl PartialEq for DatabaseSelection {
    fn eq(&self, other: &Self) -> bool {
        self.include_patterns() == other.include_patterns()
            && self.exclude_patterns() == other.exclude_patterns()
    }
}

impl Eq for DatabaseSelection {}

impl Default for DatabaseSelection {
    /// Selects every user database, as `include = ["USER_DATABASES"]` does.
    fn default() -> Self {
        DatabaseSelection {
            include: vec![Pattern::UserDatabases],
            exclude: Vec::new(),
        }
    }
}

impl DatabaseSelection {
    /// Returns whether `database` (a name from `sys.databases`) is backed up. Matching ignores
    /// case, as SQL Server's default collation SQL_Latin1_General_CP1_CI_AS does.
    pub fn selects(&self, database: &str) -> bool {
        if database.eq_ignore_ascii_case("tempdb") {
            return false;
        }
        let included = self.include.iter().any(|pattern| pattern.matches(database));
        let excluded = self.exclude.iter().any(|pattern| pattern.matches(database));
        included && !excluded
    }

    /// Returns the `include` entries, keywords in upper case and names in lower case.
    pub fn include_patterns(&self) -> Vec<&str> {
        self.include.iter().map(Pattern::text).collect()
    }

    /// Returns the `exclude` entries, written like `include_patterns`.
    pub fn exclude_patterns(&self) -> Vec<&str> {
        self.exclude.iter().map(Pattern::text).collect()
    }

    /// Reads `databases`; reports empty or invalid patterns and an empty `include`.
    pub(crate) fn from_raw(
        raw: Option<&Spanned<RawDatabases>>,
        diagnostics: &mut Diagnostics,
    ) -> DatabaseSelection {
        let mut selection = DatabaseSelection::default();
        let Some(raw) = raw else {
            return selection;
        };
        if let Some(include) = &raw.get_ref().include {
            if include.get_ref().is_empty() {
                let message = "include is empty, so no database would be backed up".to_string();
                let hint = "list databases, or remove the key to include USER_DATABASES";
                diagnostics.report(include.span().start, "databases.include", message, hint);
            }
            selection.include = patterns(include.get_ref(), "databases.include", diagnostics);
        }
        if let Some(exclude) = &raw.get_ref().exclude {
            selection.exclude = patterns(exclude, "databases.exclude", diagnostics);
        }
        selection
    }
}

impl DatabaseSelection {
    /// Builds a selection that includes the patterns in `values` and excludes nothing;
    /// reports an empty list and invalid patterns under `key`.
    pub(crate) fn from_patterns(
        values: &Spanned<Vec<Spanned<String>>>,
        key: &str,
        diagnostics: &mut Diagnostics,
    ) -> Option<DatabaseSelection> {
        if values.get_ref().is_empty() {
            let message = "the database list is empty, so it matches nothing".to_string();
            let hint = "list names, globs with * or ?, or USER_DATABASES, SYSTEM_DATABASES \
                        or ALL_DATABASES";
            diagnostics.report(values.span().start, key, message, hint);
            return None;
        }
        let include = patterns(values.get_ref(), key, diagnostics);
        (include.len() == values.get_ref().len()).then_some(DatabaseSelection {
            include,
            exclude: Vec::new(),
        })
    }
}

impl DatabaseSelection {
    /// Lists the exact names in `include` and `exclude` that differ from a keyword by at
    /// most two letters, as `USER_DATABASE` does from `USER_DATABASES`, each with its key
    /// and that keyword. Such an entry selects only a database of that name, which is
    /// seldom what was meant, so `check` warns about it.
    pub fn keyword_lookalikes(&self) -> Vec<(&'static str, &str, &'static str)> {
        let mut found = Vec::new();
        for (key, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            for pattern in patterns {
                let Pattern::Exact(name) = pattern else {
                    continue;
                };
                let upper = name.to_ascii_uppercase();
                let keyword = SELECTION_KEYWORDS
                    .into_iter()
                    .find(|keyword| strsim::levenshtein(&upper, keyword) <= 2);
                if let Some(keyword) = keyword {
                    found.push((key, name.as_str(), keyword));
                }
            }
        }
        found
    }
}

/// The keywords of a database selection, as they are written.
pub const SELECTION_KEYWORDS: [&str; 3] = ["USER_DATABASES", "SYSTEM_DATABASES", "ALL_DATABASES"];

/// Returns whether `database` is master, model or msdb, in any case.
pub fn is_system_database(database: &str) -> bool {
    SYSTEM_DATABASES
        .iter()
        .any(|system| database.eq_ignore_ascii_case(system))
}

fn patterns(values: &[Spanned<String>], key: &str, diagnostics: &mut Diagnostics) -> Vec<Pattern> {
    values
        .iter()
        .filter_map(|value| parse_pattern(value, key, diagnostics))
        .collect()
}

fn parse_pattern(
    value: &Spanned<String>,
    key: &str,
    diagnostics: &mut Diagnostics,
) -> Option<Pattern> {
    let text = value.get_ref().trim();
    if text.is_empty() {
        let message = "database name is empty".to_string();
        let hint = "write a name, a glob with * or ?, or USER_DATABASES, SYSTEM_DATABASES \
                    or ALL_DATABASES";
        diagnostics.report(value.span().start, key, message, hint);
        return None;
    }
    let keyword = match text.to_ascii_uppercase().as_str() {
        "USER_DATABASES" => Some(Pattern::UserDatabases),
        "SYSTEM_DATABASES" => Some(Pattern::SystemDatabases),
        "ALL_DATABASES" => Some(Pattern::AllDatabases),
        _ => None,
    };
    if keyword.is_some() {
        return keyword;
    }
    if !text.contains(['*', '?']) {
        return Some(Pattern::Exact(text.to_lowercase()));
    }
    match glob_matcher(text) {
        Ok(matcher) => Some(Pattern::Glob {
            text: text.to_string(),
            matcher,
        }),
        Err(error) => {
            let message = format!("invalid database pattern {text:?}: {error}");
            let hint = "use * for any run of characters and ? for one character";
            diagnostics.report(value.span().start, key, message, hint);
            None
        }
    }
}

/// Builds a case-insensitive matcher in which only `*` and `?` are wildcards. The other
/// globset metacharacters (`[`, `]`, `{`, `}`) can occur in database names, so each is
/// made literal by wrapping it in a one-character class.
fn glob_matcher(text: &str) -> Result<GlobMatcher, globset::Error> {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '[' | ']' | '{' | '}' => {
                escaped.push('[');
                escaped.push(character);
                escaped.push(']');
            }
            _ => escaped.push(character),
        }
    }
    let glob = GlobBuilder::new(&escaped)
        .case_insensitive(true)
        .literal_separator(false)
        .backslash_escape(false)
        .build()?;
    Ok(glob.compile_matcher())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(include: &[&str], exclude: &[&str]) -> DatabaseSelection {
        let build = |texts: &[&str]| -> Vec<Pattern> {
            let file = std::path::Path::new("fleet.toml");
            let mut diagnostics = Diagnostics::new(file, "");
            let values: Vec<Spanned<String>> = texts
                .iter()
                .map(|text| Spanned::new(0..0, text.to_string()))
                .collect();
            let found = patterns(&values, "databases.include", &mut diagnostics);
            assert!(diagnostics.is_empty());
            found
        };
        DatabaseSelection {
            include: build(include),
            exclude: build(exclude),
        }
    }

    #[test]
    fn default_selects_user_databases_only() {
        let selection = DatabaseSelection::default();
        assert!(selection.selects("Sales"));
        assert!(!selection.selects("master"));
        assert!(!selection.selects("MSDB"));
        assert!(!selection.selects("tempdb"));
    }

    #[test]
    fn all_databases_never_selects_tempdb() {
        let selection = selection(&["ALL_DATABASES"], &[]);
        assert!(selection.selects("model"));
        assert!(selection.selects("Sales"));
        assert!(!selection.selects("TempDB"));
    }

    #[test]
    fn glob_exclude_ignores_case() {
        let selection = selection(&["USER_DATABASES"], &["scratch_*", "tmp?"]);
        assert!(!selection.selects("Scratch_2024"));
        assert!(!selection.selects("TMP1"));
        assert!(selection.selects("tmp12"));
        assert!(selection.selects("sales"));
    }

    #[test]
    fn brackets_in_names_are_literal() {
        let selection = selection(&["a[1]*", "b{x}"], &[]);
        assert!(selection.selects("a[1]_old"));
        assert!(!selection.selects("a1_old"));
        assert!(selection.selects("B{X}"));
    }

    #[test]
    fn keywords_ignore_case() {
        let selection = selection(&["system_databases"], &["Model"]);
        assert!(selection.selects("master"));
        assert!(!selection.selects("model"));
        assert!(!selection.selects("sales"));
    }
}
