//! Loading the configuration: the file, `WSAPI__SECTION__KEY` overrides, secrets from the environment only,
//! and redaction for display.

use super::origins::Origins;
use super::reading::deserialize_sections;
use super::sections::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

impl Config {
    /// The path to load: `--config`, else `WSAPI_CONFIG`, else a checkout's `config/websocket_api.toml`
    /// or, where there is none, the installed `/etc/websocket_api/websocket_api.toml`.
    pub fn resolve_path(cli: Option<&Path>) -> PathBuf {
        cli.map(Path::to_path_buf)
            .or_else(|| std::env::var_os("WSAPI_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| {
                [DEFAULT_CONFIG_PATH, INSTALLED_CONFIG_PATH]
                    .into_iter()
                    .map(PathBuf::from)
                    .find(|p| p.exists())
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
            })
    }

    /// Loads the file (a missing default file is fine), applies the process environment, validates.
    pub fn load(path: &Path, explicit: bool) -> Result<Config, ConfigProblems> {
        Config::load_placed(path, explicit).map(|(config, _)| config)
    }

    /// `load`, each problem saying where it came from (the file's line, or the variable), and with the
    /// places kept to say the same of the problems `verdict` finds later.
    pub fn load_placed(path: &Path, explicit: bool) -> Result<(Config, Origins), ConfigProblems> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => String::new(),
            Err(e) => return Err(ConfigProblems(vec![format!("cannot read {}: {e}", path.display())])),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        let origins = Origins::read(&path.display().to_string(), &text, &env);
        match Config::from_parts(&text, &env) {
            Ok(config) => Ok((config, origins)),
            Err(ConfigProblems(problems)) => {
                let placed = problems.into_iter().map(|p| origins.place(p)).collect();
                Err(ConfigProblems(placed))
            }
        }
    }

    /// Builds the configuration from file text and environment pairs; pure, so it is tested directly.
    pub fn from_parts(toml_text: &str, env: &[(String, String)]) -> Result<Config, ConfigProblems> {
        let mut problems = Vec::new();
        let mut table = match toml_text.parse::<toml::Table>() {
            Ok(t) => t,
            Err(e) => return Err(ConfigProblems(vec![format!("file is not valid TOML: {e}")])),
        };
        check_no_secrets_in_file(&table, &mut problems);
        apply_env_overrides(&mut table, env, &mut problems);
        let mut config = deserialize_sections(table, &mut problems);
        config.read_secrets(env);
        config.read_files(&mut problems);
        config.validate(&mut problems);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigProblems(problems))
        }
    }

    fn read_secrets(&mut self, env: &[(String, String)]) {
        let get = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        for (_, _, env) in SECRETS {
            if let Some(slot) = self.secret_mut(env) {
                *slot = get(env);
            }
        }
        self.carriers.read_secrets(|name| get(name));
    }

    /// Where the secret read from `env` (one of `SECRETS`) is kept.
    fn secret_mut(&mut self, env: &str) -> Option<&mut Option<String>> {
        match env {
            ENV_ELEVENLABS_API_KEY => Some(&mut self.elevenlabs.api_key),
            ENV_ELEVENLABS_WEBHOOK_SECRET => Some(&mut self.elevenlabs.webhook_secret),
            ENV_ADMIN_TOKEN => Some(&mut self.admin.token),
            ENV_CARRIER_SECRET => Some(&mut self.carrier.secret),
            ENV_CARRIER_STATIC_TOKEN => Some(&mut self.carrier.static_token),
            _ => None,
        }
    }

    /// The effective configuration as TOML with secrets shown only as set/unset, and credentials inside URLs
    /// (a database password, a token in a query) masked.
    pub fn redacted_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).unwrap_or(toml::Value::Table(Default::default()));
        redact_urls(&mut value);
        let body = toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        let mut copy = self.clone();
        let mut secrets: Vec<(String, bool)> = SECRETS
            .iter()
            .map(|(_, _, env)| (env.to_string(), copy.secret_mut(env).is_some_and(|s| s.is_some())))
            .collect();
        secrets.extend(self.carriers.secrets().into_iter().map(|(_, _, env, set)| (env, set)));
        let lines: String = secrets
            .iter()
            .map(|(env, set)| format!("# {env}: {}\n", if *set { "set (redacted)" } else { "unset" }))
            .collect();
        format!("{body}\n# secrets (environment only)\n{lines}")
    }
}

/// Query parameters whose values are credentials.
const SECRET_PARAMS: [&str; 8] = [
    "token",
    "key",
    "api_key",
    "secret",
    "password",
    "signature",
    "sig",
    "conversation_signature",
];

/// `scheme://user:password@host/path?token=…` with the password and secret-looking query values masked.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority_end, _) = rest
        .char_indices()
        .find(|(_, c)| matches!(c, '/' | '?' | '#'))
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn redact_urls(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) if s.contains("://") => *s = redact_url(s),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| redact_urls(v)),
        toml::Value::Array(a) => a.iter_mut().for_each(redact_urls),
        _ => {}
    }
}

/// The secrets beside each carrier's own: (section, key, the environment variable it is read from).
const SECRETS: [(&str, &str, &str); 5] = [
    ("elevenlabs", "api_key", ENV_ELEVENLABS_API_KEY),
    ("elevenlabs", "webhook_secret", ENV_ELEVENLABS_WEBHOOK_SECRET),
    ("admin", "token", ENV_ADMIN_TOKEN),
    ("carrier", "secret", ENV_CARRIER_SECRET),
    ("carrier", "static_token", ENV_CARRIER_STATIC_TOKEN),
];

fn check_no_secrets_in_file(table: &toml::Table, problems: &mut Vec<String>) {
    let mut secrets: Vec<(String, &str)> = SECRETS
        .iter()
        .map(|(section, key, _)| (section.to_string(), *key))
        .collect();
    let carriers = super::CarriersConfig::default().secrets();
    secrets.extend(carriers.into_iter().map(|(section, key, _, _)| (section, key)));
    for (section, key) in secrets {
        let table_of = |path: &str| {
            path.split('.')
                .try_fold(table, |t, part| t.get(part).and_then(toml::Value::as_table))
        };
        if table_of(&section).and_then(|s| s.get(key)).is_some() {
            problems.push(format!(
                "{section}.{key}: secrets are read from the environment only, remove it from the file"
            ));
        }
    }
}

fn secret_env_names() -> BTreeSet<String> {
    let carriers = super::CarriersConfig::default().secrets();
    SECRETS
        .iter()
        .map(|(_, _, env)| env.to_string())
        .chain(carriers.into_iter().map(|(_, _, env, _)| env))
        .collect()
}

/// `WSAPI__CALLS__MAX_CONCURRENT_CALLS=500` becomes `calls.max_concurrent_calls = 500`, and a nested section
/// the same way (`WSAPI__CARRIERS__PLIVO__ANSWER_URL` is `carriers.plivo.answer_url`); values that parse as
/// a TOML scalar (number, bool) keep that type, everything else is a string.
fn apply_env_overrides(table: &mut toml::Table, env: &[(String, String)], problems: &mut Vec<String>) {
    let secrets = secret_env_names();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if secrets.contains(name) {
            continue;
        }
        let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        let Some((key, sections)) = parts.split_last().filter(|(k, s)| !k.is_empty() && !s.is_empty()) else {
            problems.push(format!("{name}: expected WSAPI__<SECTION>__<KEY>"));
            continue;
        };
        let section = sections.iter().try_fold(&mut *table, |t, part| {
            t.entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
        });
        match section {
            Some(t) => {
                t.insert(key.clone(), parse_env_value(raw));
            }
            None => problems.push(format!("{name}: section '{}' is not a table", sections.join("."))),
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match probe.parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
            // A list, e.g. WSAPI__FLEET__PEERS='["https://gw2:7901", "https://gw3:7901"]'.
            Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(raw.to_string()),
        },
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn empty_file_gives_interface_defaults() {
        let c = Config::from_parts("", &env(&[("ELEVENLABS_API_KEY", "k")])).expect("valid");
        assert_eq!(c.server.listen, "0.0.0.0:7900");
        assert_eq!(c.server.public_url, "");
        assert_eq!(c.calls.max_concurrent_calls, 200);
        assert_eq!(c.elevenlabs.url, "wss://api.elevenlabs.io/v1/convai/conversation");
        assert_eq!(c.elevenlabs.auth, ElevenLabsAuth::Header);
        assert_eq!(c.database.url, "sqlite://data/websocket_api.db");
        assert!(c.carrier.require_token);
        assert!(c.admin.token.is_none());
    }

    #[test]
    fn env_overrides_file_and_keeps_types() {
        let c = Config::from_parts(
            "[calls]\nmax_concurrent_calls = 10\n[elevenlabs]\nauth = \"none\"\n",
            &env(&[
                ("WSAPI__CALLS__MAX_CONCURRENT_CALLS", "500"),
                ("WSAPI__CARRIER__REQUIRE_TOKEN", "false"),
                ("WSAPI__ELEVENLABS__AGENT_ID", "agent_1"),
                ("WSAPI__CARRIER__ALLOWED_IPS", "[\"10.0.0.0/8\", \"192.0.2.7\"]"),
                ("WSAPI__SERVER__LISTEN", "[::1]:7900"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.calls.max_concurrent_calls, 500);
        assert!(!c.carrier.require_token);
        assert_eq!(c.elevenlabs.agent_id.as_deref(), Some("agent_1"));
        assert_eq!(c.carrier.allowed_ips, ["10.0.0.0/8", "192.0.2.7"], "a list");
        assert_eq!(c.server.listen, "[::1]:7900", "not a list");
    }

    #[test]
    fn nested_sections_are_overridden_and_their_secrets_come_from_the_environment_only() {
        let c = Config::from_parts(
            "",
            &env(&[
                (
                    "WSAPI__CARRIERS__PLIVO__ANSWER_URL",
                    "https://gw.example.com/plivo/answer",
                ),
                ("WSAPI__CARRIERS__PLIVO__AUTH_TOKEN", "s3cret"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.carriers.plivo.answer_url, "https://gw.example.com/plivo/answer");
        assert_eq!(c.carriers.plivo.auth_token.as_deref(), Some("s3cret"));
        assert!(!c.redacted_toml().contains("s3cret"), "never printed");
        let err = Config::from_parts("[carriers.plivo]\nauth_token = \"x\"\n", &env(&[])).expect_err("refused");
        assert!(err.0.iter().any(|p| p.contains("carriers.plivo.auth_token")), "{err:?}");
        let err = Config::from_parts("", &env(&[("WSAPI__CARRIERS", "x")])).expect_err("refused");
        assert!(
            err.0.iter().any(|p| p.contains("expected WSAPI__<SECTION>__<KEY>")),
            "{err:?}"
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let err = Config::from_parts(
            "[server]\nlisten = \"nowhere\"\n[calls]\nmax_concurrent_calls = 0\nframe_ms = 1\n[admin]\ntoken = \"x\"\n[bogus]\na = 1\n[carriers.plivo]\nreplay_window_s = 0\n",
            &env(&[]),
        )
        .expect_err("invalid");
        let all = err.0.join("\n");
        for needle in [
            "server.listen",
            "max_concurrent_calls",
            "frame_ms",
            "admin.token",
            "[bogus]",
            "carriers.plivo.replay_window_s",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
        assert!(err.0.len() >= 6, "{all}");
        let keyless = Config::from_parts("", &env(&[])).expect("valid without a key");
        assert!(keyless
            .serve_problems()
            .iter()
            .any(|p| p.contains("ELEVENLABS_API_KEY")));
    }

    #[test]
    fn unknown_key_and_bad_type_are_reported_per_section() {
        let err = Config::from_parts(
            "[calls]\nmax_concurent_calls = 5\n[server]\nworkers = \"two\"\n",
            &env(&[("ELEVENLABS_API_KEY", "k")]),
        )
        .expect_err("invalid");
        let all = err.0.join("\n");
        assert!(all.contains("calls.max_concurent_calls: unknown field"), "{all}");
        assert!(all.contains("did you mean calls.max_concurrent_calls?"), "{all}");
        assert!(all.contains("server.workers: invalid type"), "{all}");
    }

    #[test]
    fn a_refused_key_is_left_out_and_the_rest_of_its_section_still_read_and_checked() {
        let err = Config::from_parts(
            "[calls]\nmax_concurrent_calls = \"lots\"\nframe_ms = 2\n[carrier.plivo]\nx = 1\n",
            &env(&[("WSAPI__LOG__LEVEL", "verbose")]),
        )
        .expect_err("invalid");
        let all = err.0.join("\n");
        assert!(all.contains("calls.max_concurrent_calls: invalid type"), "{all}");
        assert!(
            all.contains("calls.frame_ms: 2 is outside"),
            "the section's other value is still checked: {all}"
        );
        assert!(all.contains("did you mean [carriers.plivo]?"), "{all}");
        assert!(all.contains("log.level: 'verbose'"), "{all}");
    }

    const SHIPPED: &str = include_str!("../../config/websocket_api.toml");

    #[test]
    fn shipped_file_is_valid_and_holds_the_defaults() {
        let shipped = Config::from_parts(SHIPPED, &env(&[("ELEVENLABS_API_KEY", "k")])).expect("shipped file valid");
        let defaults = Config::from_parts("", &env(&[("ELEVENLABS_API_KEY", "k")])).expect("defaults valid");
        assert_eq!(toml::to_string(&shipped).ok(), toml::to_string(&defaults).ok());
    }

    #[test]
    fn shipped_file_documents_every_key() {
        let mut documented = BTreeSet::new();
        let mut section = String::new();
        for line in SHIPPED.lines().map(str::trim) {
            // `[[routes]]`, commented out or not, documents the list and opens its keys.
            let list = line
                .trim_start_matches("# ")
                .strip_prefix("[[")
                .and_then(|l| l.strip_suffix("]]"));
            if let Some(name) = list {
                documented.insert(name.to_string());
                section = name.to_string();
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else if let Some((key, _)) = line.trim_start_matches("# ").split_once(" = ") {
                documented.insert(format!("{section}.{}", key.trim()));
            }
        }
        let keys = Config::keys();
        assert!(
            keys.len() > 50 && keys.contains(&"carriers.plivo.answer_url".to_string()),
            "{keys:?}"
        );
        for k in keys {
            assert!(
                documented.contains(&k),
                "config/websocket_api.toml does not document {k}"
            );
        }
    }

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            redact_url("postgres://gw:hunter2@db:5432/calls?sslmode=require"),
            "postgres://gw:***@db:5432/calls?sslmode=require"
        );
        assert_eq!(
            redact_url("wss://el.example/v1?agent_id=a&token=t0p&Signature=s"),
            "wss://el.example/v1?agent_id=a&token=***&Signature=***"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(redact_url("postgres://gw@db/calls"), "postgres://gw@db/calls");
    }

    #[test]
    fn an_open_carrier_port_is_an_exposure_unless_meant() {
        let with = |pairs: &[(&str, &str)]| Config::from_parts("", &env(pairs)).expect("valid").exposure_problems();
        let open = with(&[]);
        assert_eq!(open.len(), 1, "{open:?}");
        assert!(open[0].contains("allow_unauthenticated"));
        assert!(with(&[("WSAPI__SERVER__LISTEN", "127.0.0.1:7900")]).is_empty());
        assert!(with(&[("WSAPI__SERVER__LISTEN", "[::1]:7900")]).is_empty());
        assert!(with(&[("WSAPI__CARRIER__STATIC_TOKEN", "t")]).is_empty());
        assert!(with(&[("WSAPI__CARRIER__ALLOW_UNAUTHENTICATED", "true")]).is_empty());
        let listed = Config::from_parts("[carrier]\nallowed_ips = [\"203.0.113.0/24\"]\n", &env(&[])).expect("valid");
        assert!(listed.exposure_problems().is_empty());
        let admin = with(&[
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
            ("WSAPI__ADMIN__LISTEN", "0.0.0.0:7901"),
        ]);
        assert!(admin.len() == 1 && admin[0].contains("admin.listen"), "{admin:?}");
        assert!(with(&[
            ("WSAPI__SERVER__LISTEN", "127.0.0.1:7900"),
            ("WSAPI__ADMIN__LISTEN", "0.0.0.0:7901"),
            ("WSAPI__ADMIN__TOKEN", "t")
        ])
        .is_empty());
    }

    #[test]
    fn secrets_come_from_env_and_are_redacted() {
        let c = Config::from_parts(
            "",
            &env(&[
                ("ELEVENLABS_API_KEY", "sk_live_secret"),
                ("WSAPI__ADMIN__TOKEN", "admintok"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.admin.token.as_deref(), Some("admintok"));
        let shown = c.redacted_toml();
        assert!(
            !shown.contains("sk_live_secret") && !shown.contains("admintok"),
            "{shown}"
        );
        assert!(shown.contains("set (redacted)"));
    }

    #[test]
    fn routes_load_from_the_file_and_every_problem_is_listed_with_the_rest() {
        let good = "[[routes]]\nname = \"sales\"\nnumber = \"+918047000001\"\nagent_id = \"agent_s\"\n\
                    [routes.dynamic_variables]\nteam = \"sales\"\n[carriers.plivo]\nmax_calls = 5\n";
        let c = Config::from_parts(good, &env(&[])).expect("valid");
        assert_eq!(
            (c.routes.len(), c.routes[0].dynamic_variables["team"].as_str()),
            (1, Some("sales"))
        );
        assert_eq!(c.carriers.plivo.max_calls, Some(5));
        assert!(c.redacted_toml().contains("[[routes]]"), "{}", c.redacted_toml());
        let bad = "[calls]\nmax_concurrent_calls = 0\n[[routes]]\nname = \"x\"\nagent_id = \"\"\n\
                   [carriers.exotel]\nmax_calls = 0\n";
        let problems = Config::from_parts(bad, &env(&[])).expect_err("refused").0.join("\n");
        for expected in [
            "calls.max_concurrent_calls",
            "routes[0] \"x\": agent_id",
            "carriers.exotel.max_calls",
        ] {
            assert!(problems.contains(expected), "{expected} in\n{problems}");
        }
    }
}
