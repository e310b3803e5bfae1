//! The TOML description of the instances the simulator plays.
//! TODO: stub; the engine helper replaces it.

use serde::Deserialize;

/// The whole simulator configuration: one entry per instance.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct SimConfig {
    #[serde(default, rename = "instance")]
    pub instances: Vec<InstanceConfig>,
}

/// One SQL Server instance.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceConfig {
    pub name: String,
}
