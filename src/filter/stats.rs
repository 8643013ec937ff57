//! Envoy counters the filter keeps (`/stats?filter=claimgate`). A counter that cannot be
//! defined or bumped is logged once at start and never affects a request.

use std::collections::HashMap;
use std::rc::Rc;

use crate::config::Config;
use crate::decision::Decision;
use crate::policy::Mode;

use super::host::Host;

/// A counter defined in the host; `None` when the host refused to define it.
#[derive(Clone, Copy, Default)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(host: &dyn Host, name: &str) -> Counter {
        match host.define_counter(name) {
            Ok(id) => Counter(Some(id)),
            Err(error) => {
                log::warn!("claimgate: cannot define counter {name}: {error}");
                Counter(None)
            }
        }
    }

    pub fn increment(self, host: &dyn Host) {
        if let Some(id) = self.0 {
            // A failed counter update must not affect the request.
            let _ = host.increment_counter(id, 1);
        }
    }
}

/// Dry-run verdicts: totals, and per dry-run rule how often it would have refused a
/// request that was allowed.
#[derive(Default)]
pub struct Stats {
    would_deny: Counter,
    would_allow: Counter,
    rule_would_deny: HashMap<String, Counter>,
}

impl Stats {
    /// Defines the counters `config` can ever bump (none without dry-run rules).
    pub fn define(host: &Rc<dyn Host>, config: &Config) -> Stats {
        let host = host.as_ref();
        let mut stats = Stats::default();
        let dry_run_rules: Vec<&str> = config
            .policy
            .rules
            .iter()
            .filter(|rule| rule.mode == Mode::DryRun)
            .map(|rule| rule.name.as_str())
            .collect();
        if config.policy.mode != Mode::DryRun && dry_run_rules.is_empty() {
            return stats;
        }
        stats.would_deny = Counter::define(host, "claimgate.dry_run.would_deny");
        stats.would_allow = Counter::define(host, "claimgate.dry_run.would_allow");
        for rule in dry_run_rules {
            let name = format!("claimgate.dry_run.rule.{}.would_deny", stat_name(rule));
            stats
                .rule_would_deny
                .insert(rule.to_owned(), Counter::define(host, &name));
        }
        stats
    }

    /// Logs and counts what the dry-run rules would have done with this request.
    pub fn record_dry_run(&self, host: &dyn Host, decision: &Decision) {
        let Some(report) = &decision.dry_run else {
            return;
        };
        let status = decision.status();
        let would_deny = report.status >= 400 && status < 400;
        let would_allow = report.status < 400 && status >= 400;
        if would_deny || would_allow {
            log::info!(
                "claimgate: dry run: would answer {} instead of {status} (rule {}): {}",
                report.status,
                report
                    .rule
                    .as_deref()
                    .map_or_else(|| "default".to_owned(), |rule| format!("{rule:?}")),
                report.reason
            );
        }
        if would_deny {
            self.would_deny.increment(host);
            if let Some(counter) = report
                .rule
                .as_ref()
                .and_then(|rule| self.rule_would_deny.get(rule))
            {
                counter.increment(host);
            }
        }
        if would_allow {
            self.would_allow.increment(host);
        }
    }
}

/// A rule name as a stat name segment: characters Envoy's stat names keep, others `_`.
fn stat_name(rule: &str) -> String {
    rule.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
