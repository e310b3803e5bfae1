//! The generated configuration reference: docs/configuration.md matches the doc comments
//! of the configuration types, and fleet.example.toml loads and shows every key.

use std::path::Path;
use std::process::Command;

use bakfleet::fleet::reference::{tables, REGENERATE_COMMAND};
use bakfleet::fleet::Fleet;

fn repository_file(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn bakfleet_config(output: &str) -> String {
    let result = Command::new(env!("CARGO_BIN_EXE_bakfleet"))
        .args(["config", output])
        .output()
        .expect("run bakfleet config");
    assert!(
        result.status.success(),
        "bakfleet config {output} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    String::from_utf8(result.stdout).expect("UTF-8 output")
}

#[test]
fn configuration_page_is_current() {
    let generated = bakfleet_config("reference");
    let path = repository_file("docs/configuration.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();

    assert!(
        committed == generated,
        "{} differs from the doc comments of src/fleet/raw.rs; regenerate it with\n\n    \
         {REGENERATE_COMMAND}\n",
        path.display()
    );
}

#[test]
fn config_schema_is_json() {
    let text = bakfleet_config("schema");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");

    assert!(schema.get("$defs").is_some(), "{text}");
    let service = &schema["$defs"]["RawService"]["properties"]["min_store_free_bytes"];
    let description = service["description"].as_str().unwrap_or_default();
    assert!(description.contains("Default:"), "{service}");
}

#[test]
fn example_fleet_loads_cleanly() {
    let path = repository_file("fleet.example.toml");

    let fleet = Fleet::load(&path).unwrap_or_else(|error| panic!("{error}"));

    assert_eq!(fleet.instances.len(), 3);
    assert!(fleet.drills.is_some(), "the example has a [drill] table");
    assert_eq!(fleet.policies.len(), 2);
}

#[test]
fn example_fleet_shows_every_key() {
    let text = std::fs::read_to_string(repository_file("fleet.example.toml")).unwrap();
    let mut missing = Vec::new();
    for table in tables() {
        for key in &table.keys {
            let leaf = key.key.rsplit('.').next().unwrap_or(&key.key);
            let forms = [format!("{leaf} ="), format!("{leaf}."), format!("{leaf}]")];
            if !forms.iter().any(|form| text.contains(form.as_str())) {
                missing.push(format!("{} {}", table.heading, key.key));
            }
        }
    }

    assert!(
        missing.is_empty(),
        "fleet.example.toml neither sets nor shows these keys:\n{}",
        missing.join("\n")
    );
}
