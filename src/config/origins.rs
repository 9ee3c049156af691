//! Where each setting came from — the file's line or the environment variable — so that every problem says
//! where to fix it, and a near miss of a section or key says what was meant.

use std::collections::HashMap;

/// The place of each dotted key (`calls.frame_ms`) and section (`calls`) that was set.
#[derive(Debug, Default)]
pub struct Origins {
    places: HashMap<String, String>,
}

impl Origins {
    /// Reads the places from the file's text (`file` names it) and the `WSAPI__…` variables; a variable
    /// overrides the file's line, as it overrides its value.
    pub fn read(file: &str, text: &str, env: &[(String, String)]) -> Origins {
        let mut places = HashMap::new();
        let mut section = String::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(header) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
                section = header.trim().to_string();
            } else if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                section = header.trim().to_string();
            } else if let Some((key, _)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
                let key = key.trim().trim_matches('"');
                places
                    .entry(join(&section, key))
                    .or_insert_with(|| format!("{file}:{}", n + 1));
                continue;
            } else {
                continue;
            }
            places
                .entry(section.clone())
                .or_insert_with(|| format!("{file}:{}", n + 1));
        }
        for (name, _) in env {
            let Some(rest) = name.strip_prefix(super::sections::ENV_PREFIX) else {
                continue;
            };
            let dotted = rest
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            if let Some((section, _)) = dotted.rsplit_once('.') {
                places.entry(section.to_string()).or_insert_with(|| name.clone());
            }
            places.insert(dotted, name.clone());
        }
        Origins { places }
    }

    /// Where `dotted` (a key, else its section) was set, if it was.
    pub fn of(&self, dotted: &str) -> Option<&str> {
        let mut key = dotted;
        loop {
            if let Some(place) = self.places.get(key) {
                return Some(place);
            }
            key = key.rsplit_once('.')?.0;
        }
    }

    /// `problem` with where it came from appended: the line or variable that set the setting its first word
    /// names, or that nothing set it (the built-in default holds).
    pub fn place(&self, problem: String) -> String {
        let head = problem.split([':', ' ']).next().unwrap_or_default();
        let key = head.trim_matches(['[', ']']);
        match self.of(key) {
            Some(place) if !problem.contains(place) => format!("{problem} ({place})"),
            Some(_) => problem,
            None if key.contains('.') => format!("{problem} (not set: the built-in default)"),
            None => problem,
        }
    }
}

fn join(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// The candidate nearest to `word`, if one is near enough to be what was meant.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_is_placed_at_its_line_or_its_variable() {
        let text =
            "# comment\n[calls]\nframe_ms = 2\n\n[carriers.plivo]\nanswer_url = \"x\"\n[[routes]]\nname = \"a\"\n";
        let env = vec![("WSAPI__CALLS__MAX_CONCURRENT_CALLS".to_string(), "0".to_string())];
        let o = Origins::read("gw.toml", text, &env);
        assert_eq!(o.of("calls.frame_ms"), Some("gw.toml:3"));
        assert_eq!(o.of("carriers.plivo.answer_url"), Some("gw.toml:6"));
        assert_eq!(o.of("carriers.plivo"), Some("gw.toml:5"));
        assert_eq!(
            o.of("calls.max_concurrent_calls"),
            Some("WSAPI__CALLS__MAX_CONCURRENT_CALLS")
        );
        assert_eq!(o.of("routes.name"), Some("gw.toml:8"));
        assert_eq!(o.of("server.listen"), None);
        assert_eq!(
            o.place("server.public_url: unset".into()),
            "server.public_url: unset (not set: the built-in default)"
        );
        assert_eq!(
            o.place("calls.frame_ms: 2 is outside 5..=1000".into()),
            "calls.frame_ms: 2 is outside 5..=1000 (gw.toml:3)"
        );
        assert_eq!(
            o.place("[carriers.plivo]: bad".into()),
            "[carriers.plivo]: bad (gw.toml:5)"
        );
    }

    #[test]
    fn near_misses_are_named() {
        assert_eq!(nearest("public_ur", ["listen", "public_url"]), Some("public_url"));
        assert_eq!(nearest("cals", ["calls", "carrier"]), Some("calls"));
        assert_eq!(nearest("verbose", ["info", "debug"]), None);
    }
}
