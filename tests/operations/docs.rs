//! The manual against the code: every configuration key, route and metric is in its reference page, and no
//! link in README.md, CONTRIBUTING.md or docs/ is dead. Each check is also run on a copy of its page with
//! one name cut out, to show it would notice.
use std::path::{Path, PathBuf};
use websocket_api::config::Config;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn page(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The names `doc` does not list (as `` `name` `` or `` `name{labels}` ``).
fn unlisted<'a>(doc: &str, names: &'a [String]) -> Vec<&'a str> {
    names
        .iter()
        .map(String::as_str)
        .filter(|n| !doc.contains(&format!("`{n}`")) && !doc.contains(&format!("`{n}{{")))
        .collect()
}

/// `check` passes on `doc`, and fails on it with `name` cut out.
fn checked_both_ways(doc: &str, names: &[String], name: &str, what: &str) {
    let missing = unlisted(doc, names);
    assert!(missing.is_empty(), "{what} does not list: {missing:?}");
    let cut = doc
        .replace(&format!("`{name}`"), "")
        .replace(&format!("`{name}{{"), "`{");
    assert_eq!(
        unlisted(&cut, names),
        vec![name],
        "{what}: the check notices {name} cut out"
    );
}

#[test]
fn the_configuration_reference_lists_every_key() {
    let keys = Config::keys();
    checked_both_ways(
        &page("docs/configuration.md"),
        &keys,
        "calls.frame_ms",
        "docs/configuration.md",
    );
}

#[test]
fn the_metrics_reference_lists_every_metric() {
    let metrics = websocket_api::metrics::Metrics::new().expect("metrics");
    let _db = websocket_api::db::writer::DbStats::new(&metrics.registry).expect("db metrics");
    let catalog = websocket_api::metrics::catalog();
    let names: Vec<String> = catalog.iter().map(|(n, _, _)| n.clone()).collect();
    let doc = page("docs/metrics.md");
    let rows: Vec<String> = catalog
        .iter()
        .filter(|(n, _, _)| unlisted(&doc, std::slice::from_ref(n)).len() == 1)
        .map(|(n, help, labels)| format!("| `{n}` | {} | {help} |", labels.join(", ")))
        .collect();
    assert!(
        rows.is_empty(),
        "docs/metrics.md does not list these (rows to add):\n{}",
        rows.join("\n")
    );
    checked_both_ways(&doc, &names, "wsapi_turn_latency_seconds", "docs/metrics.md");
}

#[test]
fn the_endpoints_reference_lists_every_route() {
    // The generic routes, and each carrier's (its dialect's webhook, any socket of its own).
    let mut code = page("src/http/mod.rs");
    let folders = std::fs::read_dir(root().join("src/carriers")).expect("src/carriers");
    for folder in folders.flatten().filter(|f| f.path().is_dir()) {
        for file in ["mod.rs", "endpoint.rs"] {
            code.push_str(&std::fs::read_to_string(folder.path().join(file)).unwrap_or_default());
        }
    }
    let routes: Vec<String> = code
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with('/'))
        .map(str::to_string)
        .collect();
    assert!(
        routes.len() >= 15 && routes.contains(&"/calls/{call_id}".to_string()),
        "{routes:?}"
    );
    checked_both_ways(&page("docs/admin-api.md"), &routes, "/calls/limit", "docs/admin-api.md");
}

#[test]
fn the_subcommand_table_lists_every_subcommand() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_websocket_api"))
        .arg("--help")
        .output()
        .expect("--help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<String> = help
        .split("Commands:")
        .nth(1)
        .and_then(|rest| rest.split("Options:").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(|c| format!("websocket_api {c}"))
        .collect();
    assert!(commands.len() >= 7, "{help}");
    let doc = page("docs/getting-started.md");
    let missing: Vec<&String> = commands.iter().filter(|c| !doc.contains(&format!("`{c}"))).collect();
    assert!(missing.is_empty(), "docs/getting-started.md's table lacks {missing:?}");
}

#[test]
fn the_manual_says_what_the_code_does_in_one_place() {
    // The test binaries, counted and named as they are.
    let tests = root().join("tests");
    let mut binaries: Vec<String> = std::fs::read_dir(&tests)
        .expect("tests/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("main.rs").exists() || p.extension().is_some_and(|x| x == "rs"))
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    binaries.sort();
    let contributing = page("CONTRIBUTING.md");
    let words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"];
    let count = words.get(binaries.len().saturating_sub(1)).copied().unwrap_or("many");
    assert!(
        contributing.contains(&format!("build as {count} binaries")),
        "{binaries:?}"
    );
    for b in &binaries {
        assert!(
            contributing.contains(&format!("`{b}`")),
            "CONTRIBUTING.md names the test binary {b}"
        );
    }
    // The pacer's lead, as the code sets it.
    let lead = websocket_api::call::playout::PACING_LEAD_FRAMES;
    let architecture = page("docs/architecture.md");
    assert!(
        architecture.contains(&format!("less than {lead} frames")),
        "the pacing lead is {lead} frames"
    );
    // Mcube's production steps in one place.
    assert!(page("docs/carriers.md").contains("## Mcube in production, step by step"));
}

/// Headings of a Markdown page as GitHub makes their anchors.
fn anchors(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| l.starts_with('#'))
        })
        .map(|h| {
            h.to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

/// The relative links of `text` that lead nowhere, from `dir`.
fn dead_links(dir: &Path, text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| !t.starts_with("http") && !t.starts_with("mailto:"))
        .filter(|target| {
            let (file, anchor) = target.split_once('#').unwrap_or((target, ""));
            let path = if file.is_empty() { None } else { Some(dir.join(file)) };
            let body = match &path {
                // An image is there or not; only a page's text can hold the anchor.
                Some(p) if !anchor.is_empty() || p.extension().is_some_and(|x| x == "md") => {
                    std::fs::read_to_string(p).ok()
                }
                Some(p) => p.exists().then(String::new),
                None => Some(text.to_string()),
            };
            match body {
                None => true,
                Some(_) if anchor.is_empty() => false,
                Some(b) => !anchors(&b).iter().any(|a| a == anchor),
            }
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn no_link_in_the_manual_is_dead() {
    let mut pages = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let docs = std::fs::read_dir(root().join("docs")).expect("docs/");
    pages.extend(
        docs.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "md")),
    );
    assert!(pages.len() >= 14, "README, CONTRIBUTING and the pages of docs/");
    for p in &pages {
        let text = std::fs::read_to_string(p).expect("page");
        let dead = dead_links(p.parent().expect("dir"), &text);
        assert!(dead.is_empty(), "{}: dead links {dead:?}", p.display());
    }
    let readme = page("README.md");
    assert!(
        readme.lines().count() <= 150,
        "README.md is a front page, not the manual"
    );
    let broken = readme.replace("(docs/carriers.md)", "(docs/carrier.md)");
    assert!(
        !dead_links(&root(), &broken).is_empty(),
        "the check notices a dead link"
    );
}
