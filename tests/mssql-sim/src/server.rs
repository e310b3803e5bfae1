//! Listeners and sessions behind the [`Simulator`] handle.
//! TODO: stub; the protocol helper replaces it.

use std::net::SocketAddr;

use crate::config::SimConfig;

/// A running simulator: one listener per instance.
pub struct Simulator {
    instances: Vec<(String, SocketAddr)>,
}

/// Starts every instance of `config` and returns once all listen.
///
/// # Errors
/// A listener cannot bind its address.
pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
    let _ = config;
    Ok(Simulator { instances: Vec::new() })
}

impl Simulator {
    /// The address an instance listens on.
    pub fn addr(&self, instance: &str) -> Option<SocketAddr> {
        self.instances.iter().find(|(name, _)| name == instance).map(|(_, addr)| *addr)
    }
}
