//! The layering rules of `lib.rs`, enforced: every `crate::<module>` path in a layer's files must
//! name the layer itself or one it may use, and a layer's files must not name a crate it must
//! stay free of.

use std::path::{Path, PathBuf};

/// (layer, layers it may use, crates it must not use)
const RULES: &[(&str, &[&str], &[&str])] = &[
    (
        "util",
        &[],
        &[
            "actix_web",
            "actix_session",
            "diesel",
            "askama",
            "openidconnect",
            "reqwest",
        ],
    ),
    (
        "settings",
        &["util"],
        &["actix_web", "actix_session", "diesel", "askama"],
    ),
    (
        "idp",
        &["settings", "util"],
        &["actix_web", "actix_session", "diesel", "askama"],
    ),
    (
        "store",
        &["util"],
        &[
            "actix_web",
            "actix_session",
            "askama",
            "openidconnect",
            "reqwest",
        ],
    ),
    (
        "domain",
        &["store", "idp", "settings", "util"],
        &["actix_web", "actix_session", "askama"],
    ),
    (
        "session",
        &["domain", "store", "idp", "settings", "util"],
        &["askama"],
    ),
    (
        "web",
        &["session", "domain", "store", "idp", "settings", "util"],
        &[],
    ),
    (
        "app",
        &[
            "web", "session", "domain", "store", "idp", "settings", "util",
        ],
        &[],
    ),
];

fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = vec![];
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)
            .expect("readable src folder")
            .flatten()
        {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                files.push(p);
            }
        }
    }
    files
}

/// The layers named by `crate::x` paths in `source`, including `use crate::{x, y}` groups.
/// Comments are skipped: a doc link to the public API (`crate::Page`) is no dependency.
fn crate_paths(source: &str) -> Vec<String> {
    let code: String = source
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let source = code.as_str();
    let mut named = vec![];
    for (i, _) in source.match_indices("crate::") {
        // `$crate::` in macros and `keygate::` are not paths of this crate's modules.
        if source[..i].ends_with('$') || source[..i].ends_with(|c: char| c.is_alphanumeric()) {
            continue;
        }
        let rest = &source[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                named.push(head(item.trim()));
            }
        } else {
            named.push(head(rest));
        }
    }
    named.retain(|n| !n.is_empty());
    named
}

fn head(path: &str) -> String {
    path.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `(file, what it names)` for every rule a layer's files break.
fn violations(src: &Path) -> Vec<String> {
    let mut found = vec![];
    for (layer, allowed, forbidden) in RULES {
        let dir = src.join(layer);
        let path = if dir.is_dir() {
            dir
        } else {
            src.join(format!("{layer}.rs"))
        };
        for file in rust_files(&path) {
            let source = std::fs::read_to_string(&file).expect("readable source");
            let shown = file
                .strip_prefix(src)
                .unwrap_or(&file)
                .display()
                .to_string();
            for named in crate_paths(&source) {
                if named != *layer && !allowed.contains(&named.as_str()) {
                    found.push(format!("{shown}: layer `{layer}` uses `crate::{named}`"));
                }
            }
            for krate in *forbidden {
                let used = source.lines().any(|line| {
                    let code = line.split("//").next().unwrap_or("");
                    code.contains(&format!("{krate}::")) || code.contains(&format!("use {krate}"))
                });
                if used {
                    found.push(format!("{shown}: layer `{layer}` uses the crate `{krate}`"));
                }
            }
        }
    }
    found
}

#[test]
fn every_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(found.is_empty(), "layering broken:\n{}", found.join("\n"));
}

#[test]
fn every_source_folder_is_a_layer_with_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).expect("src").flatten() {
        let p = entry.path();
        let name = p
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if matches!(name.as_str(), "lib" | "main" | "layering") {
            continue;
        }
        assert!(
            RULES.iter().any(|(layer, _, _)| *layer == name),
            "src/{name} is not a layer of lib.rs: give it a row in RULES"
        );
    }
}

#[test]
fn the_checker_sees_grouped_and_inline_paths() {
    let named = crate_paths("use crate::{web::x, store};\nfn f() { crate::app::g(); $crate::m }");
    assert_eq!(named, ["web", "store", "app"]);
}
