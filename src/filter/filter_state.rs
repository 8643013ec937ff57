//! The decision's filter state (`wasm.claimgate.decision`, for access logs): its JSON,
//! remembered from one request to the next.

use std::cell::RefCell;

use crate::decision::Decision;

/// The last decision's explanation (the filter state's JSON), kept per VM: most requests
/// repeat the one before (same rule, same reason), and then the JSON is not built again
/// (issue 22: about half a microsecond of a cached request in Envoy). Decisions with a
/// dry-run report are always built afresh.
#[derive(Default)]
pub struct ExplanationMemo {
    last: RefCell<Option<Remembered>>,
}

struct Remembered {
    status: u16,
    rule: Option<String>,
    reason: String,
    failed_condition: Option<String>,
    json: String,
}

impl Remembered {
    fn explains(&self, decision: &Decision) -> bool {
        decision.dry_run.is_none()
            && self.status == decision.status()
            && self.rule == decision.rule
            && self.reason == decision.reason
            && self.failed_condition == decision.failed_condition
    }
}

impl ExplanationMemo {
    /// Calls `use_it` with `decision`'s explanation.
    pub fn with<T>(&self, decision: &Decision, use_it: impl FnOnce(&[u8]) -> T) -> T {
        let Ok(mut last) = self.last.try_borrow_mut() else {
            return use_it(decision.explanation().as_bytes());
        };
        if let Some(remembered) = last.as_ref().filter(|last| last.explains(decision)) {
            return use_it(remembered.json.as_bytes());
        }
        let json = decision.explanation();
        let result = use_it(json.as_bytes());
        *last = decision.dry_run.is_none().then(|| Remembered {
            status: decision.status(),
            rule: decision.rule.clone(),
            reason: decision.reason.clone(),
            failed_condition: decision.failed_condition.clone(),
            json,
        });
        result
    }
}
