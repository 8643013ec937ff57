//! Claims the README makes in its examples, checked against what the CLI does: a number
//! in the docs that drifts from the shipped files fails here, not in a reader's terminal.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use std::path::PathBuf;
use std::process::Command;

use serde::Deserialize;

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Every `… CASES.cases.yaml … # N passed, 0 failed` of the README (the count on the same
/// line or within the next few lines of the command), as (config, cases, N).
fn readme_case_counts() -> Vec<(String, String, usize)> {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let mut found = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let Some(cases) = line
            .split_whitespace()
            .find(|word| word.ends_with(".cases.yaml") && word.starts_with("filter-config/"))
        else {
            continue;
        };
        let count = lines.iter().skip(index).take(6).find_map(|later| {
            let (before, _) = later.split_once(" passed, 0 failed")?;
            before
                .rsplit(['#', ' '])
                .next()?
                .trim()
                .parse::<usize>()
                .ok()
        });
        if let Some(count) = count {
            let config = cases.replace(".cases.yaml", ".json");
            found.push((config, cases.to_owned(), count));
        }
    }
    found
}

#[test]
fn the_readmes_case_counts_are_what_claimgate_test_prints() {
    let counts = readme_case_counts();
    assert!(
        counts.len() >= 2,
        "the README's case-file examples were not found: {counts:?}"
    );
    for (config, cases, count) in counts {
        let output = Command::new(env!("CARGO_BIN_EXE_claimgate"))
            .args(["test", &config, &cases])
            .current_dir(repo(""))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{cases}: {text}");
        assert_eq!(
            text.lines().last(),
            Some(format!("{count} passed, 0 failed").as_str()),
            "README says {count} for {cases}"
        );
    }
}

/// The start-up line `envoy/deploy/README.md` shows for the Istio deployment names as many
/// rules as the `WasmPlugin`'s `pluginConfig` has.
#[test]
fn the_deploy_guides_rule_count_is_the_wasmplugins() {
    let guide = std::fs::read_to_string(repo("envoy/deploy/README.md")).unwrap();
    let shown: usize = guide
        .lines()
        .find_map(|line| {
            let (before, _) = line.split_once(" rule(s)")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .expect("the guide shows the start-up line with its rule count");
    let manifest = std::fs::read_to_string(repo("envoy/deploy/istio/wasmplugin.yaml")).unwrap();
    let plugin = serde_yaml_ng::Deserializer::from_str(&manifest)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .find(|document| document["kind"] == "WasmPlugin")
        .expect("a WasmPlugin in wasmplugin.yaml");
    let rules = plugin["spec"]["pluginConfig"]["rules"]
        .as_array()
        .expect("pluginConfig.rules")
        .len();
    assert_eq!(shown, rules, "envoy/deploy/README.md shows {shown} rule(s)");
}

/// README, "Speed": the shipped bootstraps release tcmalloc's free pages
/// (`memory_allocator_manager`). Every Envoy bootstrap in `envoy/` (not the ECDS
/// resource file or the compose file) must carry it with a non-zero release rate.
#[test]
fn every_shipped_bootstrap_releases_free_memory() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo("envoy")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bootstrap = name.ends_with(".envoy.yaml") || name.ends_with(".envoy.yaml.tmpl");
        if !bootstrap {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let release = text
            .lines()
            .skip_while(|line| !line.starts_with("memory_allocator_manager:"))
            .take(3)
            .collect::<Vec<_>>()
            .join(" ");
        let rate = release
            .split("bytes_to_release:")
            .nth(1)
            .and_then(|rest| {
                rest.trim_start()
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|digits| digits.parse::<u64>().ok())
            })
            .unwrap_or_else(|| panic!("{name}: no memory_allocator_manager.bytes_to_release"));
        assert!(rate > 0, "{name}: bytes_to_release is 0 (no release)");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} bootstraps found in envoy/");
}
