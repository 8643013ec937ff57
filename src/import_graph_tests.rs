//! The import graph inside `src/filter` and `src/policy` (and their sub-folders) is
//! one-way (issue 23): a module never imports a sibling that imports it back, directly or
//! through others. A circle makes every file in it depend on all the others, so none can
//! be read, tested or moved alone.
//!
//! Read from the sources: every `use super::…`, `use self::…` and `use crate::…` statement
//! outside inline (test) modules, resolved to the longest module path it names. A file
//! inside sibling `a` (or under its folder) naming anything inside sibling `b` is an edge
//! `a → b`. Items re-exported by a folder's `mod.rs` count as the folder's own, not as the
//! sibling that defines them. Run with `cargo test --lib import_graph`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The folders whose sibling graphs must be one-way, relative to `src`.
const FOLDERS: &[&str] = &["filter", "policy"];

#[test]
fn sibling_imports_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeMap::new();
    for folder in FOLDERS {
        collect(&src, &src.join(folder), &mut modules);
    }
    let graphs = sibling_graphs(&modules);
    let edges: usize = graphs
        .values()
        .map(|graph| graph.values().map(BTreeSet::len).sum::<usize>())
        .sum();
    assert!(
        edges > 10,
        "the parser found only {edges} sibling imports: it is broken"
    );
    let cycles: Vec<String> = graphs
        .iter()
        .filter_map(|(folder, graph)| {
            find_cycle(graph).map(|cycle| format!("{}: {}", folder.join("/"), cycle.join(" -> ")))
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "sibling modules import each other in a circle:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn finds_a_cycle_through_a_group_and_super() {
    let mut modules = BTreeMap::new();
    modules.insert(
        vec!["f".to_owned(), "a".to_owned()],
        "use super::{b::B, host};\n".to_owned(),
    );
    modules.insert(
        vec!["f".to_owned(), "b".to_owned()],
        "use crate::f::c::C;\n#[cfg(test)]\nmod tests {\n    use super::super::host;\n}\n"
            .to_owned(),
    );
    modules.insert(
        vec!["f".to_owned(), "c".to_owned()],
        "pub(super) use self::x;\nuse super::a::{\n    self,\n    A,\n};\n".to_owned(),
    );
    modules.insert(vec!["f".to_owned(), "host".to_owned()], String::new());
    let graphs = sibling_graphs(&modules);
    let graph = &graphs[&vec!["f".to_owned()]];
    assert_eq!(
        find_cycle(graph),
        Some(vec![
            "a".to_owned(),
            "b".to_owned(),
            "c".to_owned(),
            "a".to_owned()
        ])
    );
    modules.insert(
        vec!["f".to_owned(), "c".to_owned()],
        "use super::host;".to_owned(),
    );
    let graphs = sibling_graphs(&modules);
    assert_eq!(find_cycle(&graphs[&vec!["f".to_owned()]]), None);
}

/// Reads every `.rs` file under `dir` into `modules`, keyed by module path.
fn collect(src: &Path, dir: &Path, modules: &mut BTreeMap<Vec<String>, String>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(src, &path, modules);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module.last().is_some_and(|last| last == "mod") {
                module.pop();
            }
            modules.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// For each folder (a module with children), its children and whom each imports.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn sibling_graphs(modules: &BTreeMap<Vec<String>, String>) -> BTreeMap<Vec<String>, Graph> {
    let mut graphs: BTreeMap<Vec<String>, Graph> = BTreeMap::new();
    for (module, text) in modules {
        for target in imports(module, text) {
            let Some(target) = modules
                .keys()
                .filter(|known| target.starts_with(known))
                .max_by_key(|known| known.len())
            else {
                continue;
            };
            // The siblings are the children of the deepest folder holding both.
            let common = module
                .iter()
                .zip(target)
                .take_while(|(a, b)| a == b)
                .count();
            let (Some(from), Some(to)) = (module.get(common), target.get(common)) else {
                continue; // a module importing its own parent or child
            };
            graphs
                .entry(module[..common].to_vec())
                .or_default()
                .entry(from.clone())
                .or_default()
                .insert(to.clone());
        }
    }
    graphs
}

/// The absolute module paths `text` (the file of `module`) imports from this crate: its
/// `use` statements, and the paths written out in code (`super::logger::X::new()`).
fn imports(module: &[String], text: &str) -> Vec<Vec<String>> {
    let code = without_inline_modules(text);
    let mut found = Vec::new();
    let mut rest = code.as_str();
    let mut outside_use = String::new();
    while let Some(at) = rest.find("use ") {
        let starts_word =
            at == 0 || !rest[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let after = &rest[at + 4..];
        let Some(end) = after.find(';') else { break };
        if !starts_word {
            outside_use.push_str(&rest[..at + 4]);
            rest = after;
            continue;
        }
        outside_use.push_str(&rest[..at]);
        let tree = after[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let tree = ["{", "}", ",", "::"].iter().fold(tree, |tree, mark| {
            tree.replace(&format!(" {mark}"), mark)
                .replace(&format!("{mark} "), mark)
        });
        for path in expand(&tree) {
            found.extend(resolve(module, &path));
        }
        rest = &after[end..];
    }
    outside_use.push_str(rest);
    found.extend(
        written_paths(&outside_use)
            .iter()
            .filter_map(|path| resolve(module, path)),
    );
    found
}

/// The paths starting `crate::`, `super::` or `self::` written in `code`.
fn written_paths(code: &str) -> Vec<Vec<String>> {
    let is_path = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut paths = Vec::new();
    let mut start = None;
    for (index, c) in code.char_indices().chain([(code.len(), ' ')]) {
        match (start, is_path(c)) {
            (None, true) => start = Some(index),
            (Some(from), false) => {
                let path: Vec<String> = code[from..index]
                    .split("::")
                    .filter(|part| !part.is_empty())
                    .map(str::to_owned)
                    .collect();
                let rooted = path
                    .first()
                    .is_some_and(|first| ["crate", "super", "self"].contains(&first.as_str()));
                if rooted && path.len() > 1 {
                    paths.push(path);
                }
                start = None;
            }
            _ => {}
        }
    }
    paths
}

/// The file's text without comments and inline `mod name { … }` blocks (test modules,
/// whose `super` is the file itself).
fn without_inline_modules(text: &str) -> String {
    let mut kept = String::new();
    let mut depth = 0usize;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or(line);
        let trimmed = line.trim();
        let opens_module = (trimmed.starts_with("mod ") || trimmed.starts_with("pub mod "))
            && trimmed.ends_with('{');
        if depth == 0 && !opens_module {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        depth += line.matches('{').count();
        depth = depth.saturating_sub(line.matches('}').count());
    }
    kept
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e` (each split at `::`).
fn expand(tree: &str) -> Vec<Vec<String>> {
    let Some(open) = tree.find('{') else {
        let path = tree.split(' ').next().unwrap_or(tree);
        return vec![path
            .split("::")
            .filter(|part| !part.is_empty())
            .map(str::to_owned)
            .collect()];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    items.push(&inner[start..]);
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(expand)
        .map(|tail| {
            let tail = tail.into_iter().filter(|part| part != "self");
            prefix.iter().cloned().chain(tail).collect()
        })
        .collect()
}

/// `path` as seen from `module`, from the crate root; `None` outside this crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = match path.first()?.as_str() {
        "crate" => Vec::new(),
        "self" | "super" => module.to_vec(),
        _ => return None,
    };
    let mut parts = path
        .iter()
        .skip(usize::from(path.first()? == "crate"))
        .peekable();
    while let Some(part) = parts.peek() {
        match part.as_str() {
            "self" => {}
            "super" => {
                base.pop()?;
            }
            _ => break,
        }
        parts.next();
    }
    base.extend(parts.cloned());
    Some(base)
}

/// A circle in `graph`, as the modules along it (first repeated last), if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit<'g>(
        graph: &'g Graph,
        node: &'g str,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|seen| *seen == node) {
            let mut cycle: Vec<String> = path[at..].iter().map(|name| (*name).to_owned()).collect();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(graph, start, &mut Vec::new(), &mut done))
}
