//! `[[routes]]`: which agent takes a call, by its carrier and the number it reached (docs/routes.md), and
//! the checks on them. The table calls are routed with is `routing`'s, built from these once they pass.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The carriers a route may name.
pub use crate::carriers::list::NAMES as CARRIER_NAMES;
/// The longest route name, dynamic variable name and string value we take.
pub const MAX_ROUTE_NAME: usize = 64;
pub const MAX_VARIABLE_VALUE: usize = 1024;
/// The most variables one route may add.
pub const MAX_VARIABLES: usize = 64;

/// One route: calls matching `carrier` (any when unset) and `number` (exact) or `prefix` (neither: every
/// number) go to `agent_id` with `dynamic_variables` added, at most `max_calls` at once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Shown on records, `/calls` and logs; unique.
    pub name: String,
    pub carrier: Option<String>,
    /// The dialled number (our line), exactly; digits compare, so `+91 80-1234` matches `91801234`.
    pub number: Option<String>,
    /// The start of the dialled number, in digits (an optional leading `+` is ignored).
    pub prefix: Option<String>,
    pub agent_id: String,
    /// Added to the call's dynamic variables: strings, numbers or booleans.
    pub dynamic_variables: BTreeMap<String, serde_json::Value>,
    /// This route's share of the cap.
    pub max_calls: Option<usize>,
}

/// Every problem with the routes, each naming its route (`routes[2] "sales"`) and key.
pub fn check_routes(routes: &[RouteConfig], problems: &mut Vec<String>) {
    let mut names = std::collections::HashSet::new();
    for (i, r) in routes.iter().enumerate() {
        let at = format!("routes[{i}] \"{}\"", crate::values::shown(&r.name));
        let mut bad = |cond: bool, what: String| {
            if cond {
                problems.push(format!("{at}: {what}"));
            }
        };
        bad(
            !is_name(&r.name),
            format!("name: 1 to {MAX_ROUTE_NAME} letters, digits, '-' or '_'"),
        );
        bad(!names.insert(r.name.as_str()), "name: used by another route".into());
        if let Some(c) = &r.carrier {
            bad(
                !CARRIER_NAMES.contains(&c.as_str()),
                format!(
                    "carrier: '{}' is not one of {}",
                    crate::values::shown(c),
                    CARRIER_NAMES.join(", ")
                ),
            );
        }
        bad(
            r.number.is_some() && r.prefix.is_some(),
            "number and prefix: give one (number matches exactly, prefix the start)".into(),
        );
        if let Some(n) = &r.number {
            bad(
                crate::values::PhoneNumber::parse("number", n).is_err() || digits(n).is_empty(),
                "number: not a phone number".into(),
            );
        }
        if let Some(p) = &r.prefix {
            let body = p.trim().trim_start_matches('+');
            bad(
                body.is_empty()
                    || body.len() > crate::values::PhoneNumber::MAX_DIGITS
                    || !body.bytes().all(|b| b.is_ascii_digit()),
                "prefix: 1 to 20 digits, after an optional '+'".into(),
            );
        }
        bad(
            r.agent_id.trim().is_empty() || !is_visible(&r.agent_id, 256),
            "agent_id: the ElevenLabs agent's id is required".into(),
        );
        bad(
            r.max_calls == Some(0),
            "max_calls: must be at least 1 (leave it out for no share)".into(),
        );
        check_variables(&r.dynamic_variables, &mut bad);
    }
}

fn check_variables(vars: &BTreeMap<String, serde_json::Value>, bad: &mut impl FnMut(bool, String)) {
    bad(
        vars.len() > MAX_VARIABLES,
        format!("dynamic_variables: at most {MAX_VARIABLES}"),
    );
    for (name, value) in vars {
        let shown = crate::values::shown(name);
        bad(
            !is_name(name),
            format!("dynamic_variables.{shown}: names are letters, digits, '-' or '_'"),
        );
        let ok = match value {
            serde_json::Value::String(s) => s.len() <= MAX_VARIABLE_VALUE && !s.chars().any(char::is_control),
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => true,
            _ => false,
        };
        bad(
            !ok,
            format!("dynamic_variables.{shown}: a string (up to {MAX_VARIABLE_VALUE} bytes), number or boolean"),
        );
    }
}

fn is_name(s: &str) -> bool {
    (1..=MAX_ROUTE_NAME).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn is_visible(s: &str, max: usize) -> bool {
    s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic())
}

/// The digits of a number or prefix: how routes compare numbers.
pub fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(f: impl FnOnce(&mut RouteConfig)) -> RouteConfig {
        let mut r = RouteConfig {
            name: "sales".into(),
            agent_id: "agent_1".into(),
            ..Default::default()
        };
        f(&mut r);
        r
    }

    #[test]
    fn every_problem_is_named_with_its_route() {
        let routes = [
            route(|r| r.number = Some("+91 80 1234".into())),
            route(|r| {
                r.carrier = Some("skype".into());
                r.number = Some("1".into());
                r.prefix = Some("+9x".into());
                r.agent_id = String::new();
                r.max_calls = Some(0);
                r.dynamic_variables
                    .insert("bad name".into(), serde_json::json!({"a": 1}));
            }),
        ];
        let mut problems = Vec::new();
        check_routes(&routes, &mut problems);
        let text = problems.join("\n");
        for expected in [
            "routes[1] \"sales\": name: used by another route",
            "carrier: 'skype'",
            "number and prefix",
            "prefix: 1 to 20 digits",
            "agent_id",
            "max_calls",
            "dynamic_variables.bad name: names",
            "dynamic_variables.bad name: a string",
        ] {
            assert!(text.contains(expected), "{expected} in\n{text}");
        }
        assert!(!text.contains("routes[0]"), "{text}");
    }
}
