//! The fleet.toml reference, generated from the doc comments of the raw types: a JSON
//! schema, and a Markdown page with one section per table.
//!
//! Doc comments follow one convention: what the key does, its allowed values, and a last
//! sentence `Default: ...` on every optional key.

use serde_json::{Map, Value};

use super::raw::RawFleet;

/// The command that rewrites docs/configuration.md.
pub const REGENERATE_COMMAND: &str =
    "cargo run --quiet -- config reference > docs/configuration.md";

/// Marker that starts the default sentence of a doc comment.
const DEFAULT_MARKER: &str = "Default: ";

/// One key of a table, as the reference lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// Dotted path inside its table, such as `tls.encrypt`; `[]` marks an array's items.
    pub key: String,
    /// TOML type: `string`, `integer`, `boolean`, `table`, `array of string` ...
    pub kind: String,
    /// `None` for a required key; otherwise the text after `Default:`, empty when missing.
    pub default: Option<String>,
    /// The only values the key accepts, when the schema lists them.
    pub allowed: Vec<String>,
    /// The doc comment without its default sentence.
    pub description: String,
}

/// One top-level table of fleet.toml and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDoc {
    /// The table as written in fleet.toml, such as `[service]` or `[[instance]]`.
    pub heading: String,
    pub description: String,
    pub keys: Vec<KeyDoc>,
}

/// Returns the JSON schema (draft 2020-12) of fleet.toml.
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(RawFleet);
    serde_json::to_value(&schema).expect("a JSON schema serializes to JSON")
}

/// Lists the top-level tables of fleet.toml with their keys, in a fixed order, with the
/// keys of each table sorted.
pub fn tables() -> Vec<TableDoc> {
    let schema = json_schema();
    let definitions = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let walker = Walker {
        definitions: &definitions,
    };
    let properties = object_properties(&schema);
    let mut tables = Vec::new();
    for (name, property) in sorted(&properties) {
        let (heading, table) = match walker.container(property) {
            Container::Map(table) => (format!("[{name}.NAME]"), table),
            Container::Array(table) => (format!("[[{name}]]"), table),
            Container::Table(table) => (format!("[{name}]"), table),
        };
        let mut keys = Vec::new();
        walker.collect_keys(&table, "", &mut keys);
        tables.push(TableDoc {
            heading,
            description: split_default(&description_of(property)).0,
            keys,
        });
    }
    tables.sort_by_key(|table| section_rank(&table.heading));
    tables
}

/// Renders the Markdown reference page, docs/configuration.md.
pub fn markdown() -> String {
    let mut page = String::new();
    page.push_str("# fleet.toml reference\n\n");
    page.push_str(
        "Every table and key that fleet.toml accepts. This page is generated from the doc \
         comments of the configuration types in `src/fleet/raw.rs`; edit those and run\n\n",
    );
    page.push_str(&format!("```sh\n{REGENERATE_COMMAND}\n```\n\n"));
    page.push_str(
        "`bakfleet config schema` prints the same facts as a JSON schema. A key marked \
         \"takes effect at restart\" keeps its running value when `serve` reloads the file. \
         `fleet.example.toml` at the repository root sets or shows every key.\n",
    );
    for table in tables() {
        page.push_str(&format!(
            "\n## `{}`\n\n{}\n\n",
            table.heading, table.description
        ));
        page.push_str("| key | type | default | allowed values | description |\n");
        page.push_str("| --- | --- | --- | --- | --- |\n");
        for key in &table.keys {
            let default = match &key.default {
                None => "required".to_string(),
                Some(text) => text.clone(),
            };
            let allowed: Vec<String> = key.allowed.iter().map(|v| format!("`{v}`")).collect();
            page.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                key.key,
                key.kind,
                cell(&default),
                allowed.join(", "),
                cell(&key.description)
            ));
        }
    }
    page
}

/// Lists the keys whose doc comment misses a description, a default sentence on an
/// optional key, or one of the allowed values written as `` `value` ``.
pub fn undocumented() -> Vec<String> {
    let mut problems = Vec::new();
    for table in tables() {
        if table.description.is_empty() {
            problems.push(format!("{}: the table has no description", table.heading));
        }
        for key in &table.keys {
            let name = format!("{} {}", table.heading, key.key);
            if key.description.is_empty() {
                problems.push(format!("{name}: no description"));
            }
            if key.default.as_deref() == Some("") {
                problems.push(format!(
                    "{name}: optional key without a `{}...` sentence",
                    DEFAULT_MARKER.trim_end()
                ));
            }
            for value in &key.allowed {
                if !key.description.contains(&format!("`{value}`")) {
                    problems.push(format!("{name}: allowed value `{value}` is not described"));
                }
            }
        }
    }
    problems
}

/// Shape of a top-level key: one table, tables by name, or a list of tables.
enum Container {
    /// `[name]`: one table.
    Table(Value),
    /// `[name.NAME]`: tables by name.
    Map(Value),
    /// `[[name]]`: a list of tables.
    Array(Value),
}

/// Resolves `$ref`s against the schema's `$defs`.
struct Walker<'a> {
    definitions: &'a Map<String, Value>,
}

impl Walker<'_> {
    fn container(&self, property: &Value) -> Container {
        let property = self.resolve(property);
        if let Some(items) = property.get("items") {
            return Container::Array(self.resolve(items));
        }
        if let Some(values) = property
            .get("additionalProperties")
            .filter(|v| v.is_object())
        {
            return Container::Map(self.resolve(values));
        }
        Container::Table(property)
    }

    /// Appends a row per key of `table`, and the rows of nested tables under `prefix.`.
    fn collect_keys(&self, table: &Value, prefix: &str, keys: &mut Vec<KeyDoc>) {
        let required: Vec<&str> = table
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let properties = object_properties(table);
        for (name, property) in sorted(&properties) {
            let key = format!("{prefix}{name}");
            let resolved = self.resolve(property);
            let (description, default) = split_default(&description_of(property));
            let default = if required.contains(&name.as_str()) {
                None
            } else {
                Some(default)
            };
            let allowed = property
                .get("enum")
                .or_else(|| resolved.get("enum"))
                .and_then(Value::as_array)
                .map(|values| {
                    values
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            keys.push(KeyDoc {
                key: key.clone(),
                kind: self.kind(&resolved),
                default,
                allowed,
                description,
            });
            if let Some(items) = resolved.get("items") {
                let items = self.resolve(items);
                if items.get("properties").is_some() {
                    self.collect_keys(&items, &format!("{key}[]."), keys);
                }
            } else if resolved.get("properties").is_some() {
                self.collect_keys(&resolved, &format!("{key}."), keys);
            }
        }
    }

    /// Returns the TOML type name of a resolved schema.
    fn kind(&self, schema: &Value) -> String {
        let kind = match schema.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("value")
                .to_string(),
            _ if schema.get("properties").is_some() => "object".to_string(),
            _ => "value".to_string(),
        };
        match kind.as_str() {
            "object" => "table".to_string(),
            "array" => {
                let items = schema
                    .get("items")
                    .map(|items| self.kind(&self.resolve(items)))
                    .unwrap_or_else(|| "value".to_string());
                let items = if items == "table" { "tables" } else { &items };
                format!("array of {items}")
            }
            other => other.to_string(),
        }
    }

    /// Follows a `$ref`, and drops the `null` alternative of an optional value.
    fn resolve(&self, schema: &Value) -> Value {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            if let Some(definition) = self.definitions.get(name) {
                return self.resolve(definition);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
                let not_null = alternatives
                    .iter()
                    .find(|alternative| alternative.get("type") != Some(&Value::from("null")));
                if let Some(alternative) = not_null {
                    return self.resolve(alternative);
                }
            }
        }
        schema.clone()
    }
}

fn object_properties(schema: &Value) -> Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Returns the entries of `map` sorted by key, so the page does not depend on the order
/// serde_json keeps.
fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn description_of(schema: &Value) -> String {
    schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Splits a doc comment into its description and the text of its `Default:` sentence,
/// which is the last one by convention.
fn split_default(doc: &str) -> (String, String) {
    let doc = one_line(doc);
    match doc.find(DEFAULT_MARKER) {
        Some(start) => {
            let description = doc[..start].trim().to_string();
            let default = doc[start + DEFAULT_MARKER.len()..].trim();
            let default = default.strip_suffix('.').unwrap_or(default);
            (description, default.to_string())
        }
        None => (doc, String::new()),
    }
}

/// Joins the lines of a doc comment into one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Escapes a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Orders the sections as a fleet file is usually written.
fn section_rank(heading: &str) -> usize {
    const ORDER: [&str; 7] = [
        "[service]",
        "[defaults]",
        "[policy.NAME]",
        "[credentials.NAME]",
        "[[instance]]",
        "[drill]",
        "[alerts]",
    ];
    ORDER
        .iter()
        .position(|known| *known == heading)
        .unwrap_or(ORDER.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_documented() {
        let problems = undocumented();
        assert!(
            problems.is_empty(),
            "write a `///` doc comment on these fields in src/fleet/raw.rs, saying what \
             the key does, its allowed values and `Default: ...`:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn tables_cover_every_section() {
        let headings: Vec<String> = tables().into_iter().map(|table| table.heading).collect();
        assert_eq!(
            headings,
            [
                "[service]",
                "[defaults]",
                "[policy.NAME]",
                "[credentials.NAME]",
                "[[instance]]",
                "[drill]",
                "[alerts]"
            ]
        );
    }

    #[test]
    fn nested_keys_are_listed() {
        let tables = tables();
        let instance = tables
            .iter()
            .find(|table| table.heading == "[[instance]]")
            .expect("instance table");
        let keys: Vec<&str> = instance.keys.iter().map(|key| key.key.as_str()).collect();
        for expected in [
            "name",
            "tls.encrypt",
            "staging.sftp.known_hosts",
            "database_policies[].policy",
            "schedule.log",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        let encrypt = instance
            .keys
            .iter()
            .find(|key| key.key == "tls.encrypt")
            .expect("tls.encrypt");
        assert_eq!(
            encrypt.allowed,
            ["strict", "mandatory", "optional", "not_supported"]
        );
        assert_eq!(encrypt.default.as_deref(), Some("`mandatory`"));
        let name = instance.keys.iter().find(|key| key.key == "name").unwrap();
        assert_eq!(name.default, None, "name is required");
    }

    #[test]
    fn split_default_takes_last_sentence() {
        let (description, default) = split_default("Port of the server.\nDefault: `1433`.");
        assert_eq!(description, "Port of the server.");
        assert_eq!(default, "`1433`");
        let (description, default) = split_default("Name of the instance.");
        assert_eq!(description, "Name of the instance.");
        assert_eq!(default, "");
    }
}
