//! Reading the TOML table into the typed sections: section by section, and within a section key by key, so
//! that each refused key is reported in the config's own words (with what was likely meant) and left out,
//! and the section's other values are still read and checked.

use super::origins::nearest;
use super::sections::*;

/// Deserializes section by section, and within a section key by key: a key serde refuses is reported and
/// left out, and the section read again, so one bad key hides neither the others' problems nor its
/// section's other values.
pub(super) fn deserialize_sections(table: toml::Table, problems: &mut Vec<String>) -> Config {
    let mut config = Config::default();
    for (section, mut value) in table {
        if !SECTIONS.contains(&section.as_str()) {
            let hint = nearest(&section, SECTIONS).map_or(String::new(), |s| format!("; did you mean [{s}]?"));
            problems.push(format!("[{section}]: unknown section{hint}"));
            continue;
        }
        // Each round leaves out one refused key; a section has fewer keys than this.
        for _ in 0..64 {
            let Err(e) = read_section(&mut config, &section, value.clone()) else {
                break;
            };
            let message = e.to_string();
            let key = refused_key(&message);
            problems.push(section_problem(&section, &message, key.as_deref()));
            if !key.is_some_and(|k| leave_out(&mut value, &k)) {
                break;
            }
        }
    }
    config
}

const SECTIONS: [&str; 12] = [
    "server",
    "calls",
    "elevenlabs",
    "database",
    "admin",
    "carrier",
    "log",
    "capacity",
    "fleet",
    "recording",
    "carriers",
    "routes",
];

fn read_section(config: &mut Config, section: &str, value: toml::Value) -> Result<(), toml::de::Error> {
    match section {
        "server" => value.try_into().map(|v| config.server = v),
        "calls" => value.try_into().map(|v| config.calls = v),
        "elevenlabs" => value.try_into().map(|v| config.elevenlabs = v),
        "database" => value.try_into().map(|v| config.database = v),
        "admin" => value.try_into().map(|v| config.admin = v),
        "carrier" => value.try_into().map(|v| config.carrier = v),
        "log" => value.try_into().map(|v| config.log = v),
        "capacity" => value.try_into().map(|v| config.capacity = v),
        "fleet" => value.try_into().map(|v| config.fleet = v),
        "recording" => value.try_into().map(|v| config.recording = v),
        "carriers" => value.try_into().map(|v| config.carriers = v),
        _ => value.try_into().map(|v| config.routes = v),
    }
}

/// The key serde names in its refusal, as a dotted path within the section: `unknown field `k``, a bad
/// value `in `k``, or both (`unknown field `k`` … `in `sub``: `sub.k`).
fn refused_key(message: &str) -> Option<String> {
    let after = |marker: &str| {
        let rest = &message[message.find(marker)? + marker.len()..];
        Some(rest.split('`').next()?.to_string())
    };
    match (after("unknown field `"), after("in `")) {
        (Some(field), Some(within)) => Some(format!("{within}.{field}")),
        (field, within) => field.or(within),
    }
}

/// Leaves out `key` (a dotted path) from a section's table; whether there was such a key.
fn leave_out(value: &mut toml::Value, key: &str) -> bool {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return false };
    let table = parts.iter().try_fold(value, |v, part| v.as_table_mut()?.get_mut(*part));
    table.and_then(|t| t.as_table_mut()?.remove(last)).is_some()
}

/// A refusal in the config's own words: `section.key: what`, with what was likely meant.
fn section_problem(section: &str, message: &str, key: Option<&str>) -> String {
    let what = message.lines().next().unwrap_or_default().trim();
    let Some(key) = key else {
        return format!("[{section}]: {what}");
    };
    let mut problem = format!("{section}.{key}: {what}");
    let field = key.rsplit('.').next().unwrap_or(key);
    if section == "carrier" && crate::carriers::list::NAMES.contains(&key) {
        problem.push_str(&format!("; did you mean [carriers.{key}]?"));
    } else if let Some(expected) = what.split("expected one of ").nth(1) {
        let candidates = expected.split(", ").map(|c| c.trim_matches('`'));
        let variant = what.strip_prefix("unknown variant `").and_then(|v| v.split('`').next());
        if let Some(near) = variant.and_then(|v| nearest(v, candidates.clone())) {
            problem.push_str(&format!("; did you mean \"{near}\"?"));
        } else if let Some(near) = nearest(field, candidates) {
            let within = key.rsplit_once('.').map_or(String::new(), |(w, _)| format!("{w}."));
            problem.push_str(&format!("; did you mean {section}.{within}{near}?"));
        }
    }
    problem
}

impl Config {
    /// Every key of the configuration, dotted (`calls.frame_ms`; `routes` for the list), as the shipped file
    /// and the manual must document them.
    pub fn keys() -> Vec<String> {
        fn leaves(prefix: &str, table: &toml::Table, keys: &mut Vec<String>) {
            for (key, value) in table {
                match value.as_table() {
                    Some(inner) if !prefix.is_empty() || !inner.is_empty() => {
                        leaves(&format!("{prefix}{key}."), inner, keys)
                    }
                    _ => keys.push(format!("{prefix}{key}")),
                }
            }
        }
        let mut keys = Vec::new();
        if let Ok(toml::Value::Table(defaults)) = toml::Value::try_from(Config::default()) {
            leaves("", &defaults, &mut keys);
        }
        // Unset by default, so absent from the defaults' table.
        keys.push("elevenlabs.agent_id".into());
        keys
    }
}
