//! The layer rule, checked on the source so a wrong import fails the build's tests: `http` →
//! `domain` → `store` → `model`, one way (`app` and `main` wire them all; `demo` and `pki` sit
//! beside `app`), and no import circles between modules. A module's imports of its own parent
//! (`super::Db`) and a parent's declarations of its children are structure, not layering, and
//! test modules are not counted. The picture is in `docs/ARCHITECTURE.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/domain/ra/mod.rs` → `[domain, admin]`; `src/main.rs` → `[main]`.
fn module_of(path: &Path, src: &Path) -> Module {
    let rel = path.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The source without comments and without `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skipping_tests = false;
    let mut depth = 0i32;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if !skipping_tests
            && t.starts_with("#[cfg(test)]")
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            skipping_tests = true;
            depth = 0;
            continue;
        }
        if skipping_tests {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            if depth <= 0 && line.contains('}') {
                skipping_tests = false;
            }
            continue;
        }
        if t.starts_with("//") {
            continue;
        }
        out.push_str(line.split("//").next().unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Every module path a file names: `crate::a::b` (or `careid::a::b`), `super::x`, and the items of
/// `crate::a::{b, c::D}` groups.
fn named_paths(code: &str, module: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let (base, skip): (Module, usize) = if at_word_start && rest.starts_with("crate::") {
            (Vec::new(), 7)
        } else if at_word_start && rest.starts_with("careid::") {
            // The binary (`main.rs`) names the library by its crate name.
            (Vec::new(), 8)
        } else if at_word_start && rest.starts_with("super::") {
            let mut base = module.clone();
            let mut skip = 0;
            while code[i + skip..].starts_with("super::") {
                base.pop();
                skip += 7;
            }
            (base, skip)
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let tail = &code[i + skip..];
        let path: String = tail
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let mut prefix = base.clone();
        prefix.extend(path.split("::").filter(|s| !s.is_empty()).map(String::from));
        if tail[path.len()..].starts_with('{') {
            let group: String = tail[path.len() + 1..]
                .chars()
                .take_while(|c| *c != '}')
                .collect();
            for item in group.split(',') {
                let mut p = prefix.clone();
                p.extend(
                    item.trim()
                        .split("::")
                        .filter(|s| !s.is_empty())
                        .map(String::from),
                );
                found.push(p);
            }
        } else {
            found.push(prefix);
        }
        i += skip + path.len().max(1);
    }
    found
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(path: &Module, modules: &BTreeSet<Module>) -> Option<Module> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// Which layers a layer may import.
fn allowed(layer: &str) -> &'static [&'static str] {
    match layer {
        "model" => &["model", "clock"],
        "store" => &["store", "model", "clock"],
        "domain" => &["domain", "store", "model", "clock", "config"],
        "http" => &["http", "domain", "model", "clock", "config"],
        "clock" => &["clock"],
        "config" => &["config"],
        // Traces: set up from the configuration, used by main.
        "telemetry" => &["telemetry", "config"],
        // The card agent is a client of careid: only the protocol's messages are shared.
        "agent" => &["agent", "model"],
        // The agent's and the virtual card's commands.
        "bin" => &["agent", "model"],
        // Wiring and tools: everything.
        _ => &[
            "app",
            "http",
            "domain",
            "store",
            "model",
            "clock",
            "config",
            "demo",
            "pki",
            "telemetry",
        ],
    }
}

fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(f, &src)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(file, &src);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let targets: BTreeSet<Module> = named_paths(&code, &module)
            .iter()
            .filter_map(|p| resolve(p, &modules))
            // Own ancestors and descendants are structure, not layering.
            .filter(|t| !module.starts_with(t) && !t.starts_with(&module))
            .collect();
        edges.insert(module, targets);
    }
    edges
}

#[test]
fn every_import_points_down_the_layers() {
    let mut wrong = Vec::new();
    for (from, targets) in graph() {
        let Some(layer) = from.first() else { continue };
        for to in targets {
            if !allowed(layer).contains(&to[0].as_str()) {
                wrong.push(format!("{} imports {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layer rule (http → domain → store → model):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn only_the_command_line_uses_the_demo() {
    let mut users: Vec<String> = graph()
        .into_iter()
        .filter(|(from, targets)| {
            from.first().is_some_and(|l| l != "demo") && targets.iter().any(|t| t[0] == "demo")
        })
        .map(|(from, _)| from.join("::"))
        .collect();
    users.sort();
    assert_eq!(
        users,
        vec!["main"],
        "the demo's code stays out of the service's modules"
    );
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let edges = graph();
    let mut circles = Vec::new();
    // A depth-first walk from every module; a path back to a module on the stack is a circle.
    fn walk(
        at: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        stack: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
        circles: &mut Vec<String>,
    ) {
        if let Some(i) = stack.iter().position(|m| m == at) {
            let names: Vec<String> = stack[i..].iter().map(|m| m.join("::")).collect();
            circles.push(format!("{} → {}", names.join(" → "), at.join("::")));
            return;
        }
        if done.contains(at) {
            return;
        }
        stack.push(at.clone());
        for next in edges.get(at).into_iter().flatten() {
            walk(next, edges, stack, done, circles);
        }
        stack.pop();
        done.insert(at.clone());
    }
    let mut done = BTreeSet::new();
    for module in edges.keys() {
        walk(module, &edges, &mut Vec::new(), &mut done, &mut circles);
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_sees_a_wrong_import() {
    // The parser finds `crate::` and `super::` paths, groups included, and not in comments.
    let code = code_of(
        "use crate::domain::{login, client::Client};\n// use crate::http::x;\nuse super::super::model::grant;\n",
    );
    let module: Module = vec!["store".into(), "sessions".into()];
    let paths = named_paths(&code, &module);
    assert!(paths.contains(&vec!["domain".into(), "login".into()]));
    assert!(paths.contains(&vec!["domain".into(), "client".into(), "Client".into()]));
    assert!(paths.contains(&vec!["model".into(), "grant".into()]));
    assert!(!paths.iter().any(|p| p.first().is_some_and(|s| s == "http")));
    assert!(!allowed("store").contains(&"domain"));
}
