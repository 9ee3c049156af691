//! How an agent connection failed, and whose failure it is: the account's (every call would fail) or the
//! agent's (only calls to that agent would). The breakers count each where it belongs; the call gives up
//! on an agent that refused it rather than redialling.

use crate::values::Text;

/// Which part of the ElevenLabs side a conversation that failed to start speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureScope {
    /// The account or the service: a bad key, quota or concurrency limit, an outage, the network. Any
    /// call would fail the same way.
    Account,
    /// The agent the call asked for: it is gone, or refuses what its route sends (a prompt variable it
    /// needs, an override). Calls to other agents are fine, and ElevenLabs itself answered.
    Agent,
}

/// `error_type`s that speak of the agent's configuration, not of the account or the service.
const AGENT_ERRORS: [&str; 7] = [
    "missing_dynamic_variable",
    "missing_dynamic_variable_transfer",
    "override_error",
    "telephony_agent_error",
    "custom_llm_error",
    "mcp_tool_error",
    "mcp_https_error",
];

impl FailureScope {
    /// An upgrade or signed-URL request answered `status`: no such agent (404, 410) or an agent id it
    /// refuses (422) is the agent's; every other refusal (401/403 bad key, 429 quota or concurrency, 5xx)
    /// is the account's.
    pub fn of_status(status: u16) -> FailureScope {
        match status {
            404 | 410 | 422 => FailureScope::Agent,
            _ => FailureScope::Account,
        }
    }

    /// A connection closed before its conversation started, with `close_code` after an `error` event of
    /// `error_type`: ElevenLabs answers 1008 to the initiation a route sent when the agent refuses it
    /// (a missing prompt variable, an override, an agent that cannot take phone calls).
    pub fn of_close(close_code: Option<u16>, error_type: Option<&str>) -> FailureScope {
        if close_code == Some(1008) || error_type.is_some_and(|t| AGENT_ERRORS.contains(&t)) {
            FailureScope::Agent
        } else {
            FailureScope::Account
        }
    }
}

/// How an agent connection failed: its close code and `error` event, in words, and whose failure it is.
pub struct Failure {
    pub close_code: Option<u16>,
    pub error_type: Option<Text>,
    pub detail: String,
    pub scope: FailureScope,
}

impl Failure {
    /// A failure without a close (a dial that failed, a timeout), the account's unless said otherwise.
    pub fn account(detail: String) -> Failure {
        Failure {
            close_code: None,
            error_type: None,
            detail,
            scope: FailureScope::Account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sorted_by_scope() {
        use FailureScope::*;
        assert_eq!(FailureScope::of_status(404), Agent);
        assert_eq!(FailureScope::of_status(422), Agent);
        for account in [401, 403, 429, 500, 503] {
            assert_eq!(FailureScope::of_status(account), Account, "{account}");
        }
        assert_eq!(
            FailureScope::of_close(Some(1008), Some("missing_dynamic_variable")),
            Agent
        );
        assert_eq!(FailureScope::of_close(Some(1008), None), Agent);
        assert_eq!(FailureScope::of_close(Some(1002), Some("custom_llm_error")), Agent);
        assert_eq!(
            FailureScope::of_close(Some(1011), Some("unknown_websocket_crash")),
            Account
        );
        assert_eq!(FailureScope::of_close(None, None), Account);
    }
}
