//! The root context of one VM: loads the configuration, ticks the remote key sources,
//! takes fetch responses, and settles the requests that waited for keys.

use std::rc::Rc;
use std::time::Duration;

use crate::config::{Config, HostCryptoMode};

use super::host::Host;
use super::host_crypto;
use super::http::HttpFilter;
use super::plugin::Plugin;
use super::remote::Delivered;
use super::stats::Stats;
use crate::dpop::{NonceKey, NonceSecretsEnv, SecretError, SecretRole};

/// How often root contexts look at the shared key records (only with remote sources).
pub const TICK: Duration = Duration::from_millis(100);

pub struct RootFilter {
    host: Rc<dyn Host>,
    context_id: u32,
    plugin: Option<Rc<Plugin>>,
}

impl RootFilter {
    pub fn new(host: Rc<dyn Host>, context_id: u32) -> RootFilter {
        RootFilter {
            host,
            context_id,
            plugin: None,
        }
    }

    /// Loads the plugin configuration; `false` makes Envoy refuse it (the log names the
    /// field).
    pub fn on_configure(&mut self) -> bool {
        if let Ok(now) = self.host.now_ms() {
            super::logger::LogLevelSync::default().sync(self.host.as_ref(), now);
        }
        let bytes = match self.host.plugin_configuration() {
            Ok(Some(bytes)) => bytes,
            Ok(None) | Err(_) => {
                log::error!("claimgate: no plugin configuration; give the JSON configuration as the Wasm plugin 'configuration'");
                return false;
            }
        };
        let config = match Config::from_json(&bytes) {
            Ok(config) => config,
            Err(err) => {
                log::error!("claimgate: invalid configuration: {err}");
                return false;
            }
        };
        let mut keys = config.initial_keys();
        if config.host_crypto == HostCryptoMode::Auto {
            host_crypto::install(&self.host, &mut keys);
        }
        for warning in &config.warnings {
            if warning.deployment {
                log::info!("claimgate: configuration note: {warning}");
            } else {
                log::warn!("claimgate: configuration warning: {warning}");
            }
        }
        let nonce_key = match &config.dpop.nonce_secrets {
            None => None,
            Some(secrets) => match operator_nonce_key(self.host.as_ref(), secrets) {
                Ok(key) => Some(key),
                Err(error) => {
                    log::error!("claimgate: invalid configuration: {error}");
                    return false;
                }
            },
        };
        let stats = Stats::define(self.host.as_ref(), &config);
        let plugin = Plugin::new(Rc::clone(&self.host), config, keys, stats, nonce_key);
        let remote_count = plugin.remote_providers().len();
        log::info!(
            "claimgate: configuration loaded: {} provider(s) ({} with remote keys), {} rule(s) (claimgate {})",
            plugin.config().providers.len(),
            remote_count,
            plugin.config().policy.rules.len(),
            env!("CARGO_PKG_VERSION")
        );
        if remote_count > 0 {
            // Fetches start from the first tick, not from here.
            if let Err(error) = self.host.set_tick_period(TICK) {
                log::error!("claimgate: cannot set the tick period: {error}");
                return false;
            }
        }
        self.plugin = Some(Rc::new(plugin));
        true
    }

    pub fn on_tick(&mut self) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(now) = plugin.now_ms() else {
            return;
        };
        let providers = plugin.remote_providers();
        for provider in &providers {
            plugin.sync(*provider, now);
        }
        for provider in &providers {
            plugin.maybe_fetch(*provider, now);
        }
        plugin.settle_waiters(self.context_id, now);
    }

    pub fn on_http_call_response(&mut self, delivered: &Delivered) {
        let Some(plugin) = self.plugin.clone() else {
            return;
        };
        let Some(now) = plugin.now_ms() else {
            return;
        };
        if plugin.on_record_response(delivered, now) {
            // Sent while settling a waiter: act on its request, then come back.
            if let Err(error) = self.host.set_effective_context(self.context_id) {
                log::error!("claimgate: cannot return to the root context: {error}");
            }
            return;
        }
        if plugin.on_fetch_response(delivered, now) {
            plugin.settle_waiters(self.context_id, now);
        }
    }

    /// The filter for a new request; `None` before a configuration loaded.
    pub fn create_http_context(&self, context_id: u32) -> Option<HttpFilter> {
        let plugin = Rc::clone(self.plugin.as_ref()?);
        Some(HttpFilter::new(plugin, context_id))
    }

    #[cfg(test)]
    pub fn plugin(&self) -> Option<&Rc<Plugin>> {
        self.plugin.as_ref()
    }
}

/// Why the operator's nonce secrets cannot be used; the message names the configuration
/// field and the variable, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NonceSecretError {
    /// The variable is not set in the VM's environment (or is not UTF-8).
    Missing {
        field: &'static str,
        variable: String,
    },
    /// The variable's value is not a usable secret.
    Invalid {
        field: &'static str,
        variable: String,
        error: SecretError,
    },
}

impl std::fmt::Display for NonceSecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NonceSecretError::Missing { field, variable } => write!(
                f,
                "dpop_proofs.nonce_secrets.{field}: environment variable {variable} is not set \
                 in the Wasm VM (vm_config.environment_variables)"
            ),
            NonceSecretError::Invalid {
                field,
                variable,
                error,
            } => write!(
                f,
                "dpop_proofs.nonce_secrets.{field}: environment variable {variable} {error} \
                 (a base64url secret of at least 32 random bytes)"
            ),
        }
    }
}

impl std::error::Error for NonceSecretError {}

/// The nonce key from the VM environment variables `secrets` names.
pub fn operator_nonce_key(
    host: &dyn Host,
    secrets: &NonceSecretsEnv,
) -> Result<NonceKey, NonceSecretError> {
    let read = |field: &'static str, variable: &str| {
        host.environment_variable(variable)
            .ok_or_else(|| NonceSecretError::Missing {
                field,
                variable: variable.to_owned(),
            })
    };
    let current = read("current_env", &secrets.current_env)?;
    let invalid = |role: SecretRole, error: SecretError| {
        let (field, variable) = match role {
            SecretRole::Current => ("current_env", secrets.current_env.clone()),
            SecretRole::Previous => (
                "previous_env",
                secrets.previous_env.clone().unwrap_or_default(),
            ),
        };
        NonceSecretError::Invalid {
            field,
            variable,
            error,
        }
    };
    // The current secret is checked before the previous one is read.
    NonceKey::from_secrets(&current, None).map_err(|(role, error)| invalid(role, error))?;
    let previous = secrets
        .previous_env
        .as_deref()
        .map(|variable| read("previous_env", variable))
        .transpose()?;
    NonceKey::from_secrets(&current, previous.as_deref())
        .map_err(|(role, error)| invalid(role, error))
}
