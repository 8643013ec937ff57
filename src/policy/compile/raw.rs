//! The `rules` entries as written (serde, `deny_unknown_fields`).

use serde::Deserialize;
use serde_json::Value;

use crate::policy::{Mode, RawStepUp};

/// A rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(rename = "match", default)]
    pub(super) matcher: RawMatch,
    #[serde(default)]
    pub(super) effect: Option<RawEffect>,
    #[serde(default)]
    pub(super) access: Option<RawAccess>,
    #[serde(default)]
    pub(super) require: Option<Vec<Value>>,
    #[serde(default)]
    pub(super) when: Option<Value>,
    #[serde(default)]
    pub(super) mode: Option<Mode>,
    #[serde(default)]
    pub(super) providers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) step_up: Option<RawStepUp>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawEffect {
    Allow,
    Deny,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawAccess {
    Public,
    Authenticated,
    Deny,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMatch {
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) template: Option<String>,
    #[serde(default)]
    pub(super) regex: Option<String>,
    #[serde(default)]
    pub(super) methods: Option<Vec<String>>,
    #[serde(default)]
    pub(super) hosts: Option<Vec<String>>,
}
