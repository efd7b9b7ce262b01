//! Links shared modules: after every file of the flows directory loaded, each `call_module`
//! block's module is looked up among them, cycles are refused (a module that calls itself,
//! directly or through others), and each flow gets the loaded modules it calls. Problems are
//! reported at the `module` property, with file, line and column; a flow that cannot be
//! linked is refused with them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::blocks::call_module::calls;
use super::load::{Flow, FlowErrors};
use crate::diagnostics::suggest;
use crate::yaml::Diagnostic;

fn file_name(f: &Flow) -> String {
    f.file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Links `flows` (loaded from one directory) and returns those that link; the others' problems
/// join `errors` (a call to a file that failed to load is a problem of the caller too).
pub fn link(flows: Vec<Flow>, errors: &mut Vec<FlowErrors>) -> Vec<Flow> {
    let broken: Vec<String> = errors
        .iter()
        .filter_map(|e| e.file.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let names: Vec<String> = flows.iter().map(file_name).collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut problems: Vec<Vec<Diagnostic>> = vec![Vec::new(); flows.len()];
    // Edges, with the problems a single reference has.
    let mut edges: Vec<Vec<(usize, crate::diagnostics::Pos, String)>> =
        vec![Vec::new(); flows.len()];
    for (i, f) in flows.iter().enumerate() {
        for (module, pos, path) in calls(&f.blocks) {
            match index.get(module) {
                Some(&j) if flows[j].kind != f.kind => problems[i].push(Diagnostic::new(
                    pos,
                    path,
                    format!(
                        "module `{module}` is a {} application; this one is {}",
                        format!("{:?}", flows[j].kind).to_lowercase(),
                        format!("{:?}", f.kind).to_lowercase()
                    ),
                )),
                Some(&j) => edges[i].push((j, pos, path)),
                None if broken.iter().any(|b| b == module) => problems[i].push(Diagnostic::new(
                    pos,
                    path,
                    format!("module `{module}` has problems of its own (see them)"),
                )),
                None => {
                    let mut known: Vec<&str> = names.iter().map(String::as_str).collect();
                    known.extend(broken.iter().map(String::as_str));
                    problems[i].push(Diagnostic::new(
                        pos,
                        path,
                        format!(
                            "no module `{module}` in the flows directory{}",
                            suggest(module, &known)
                        ),
                    ));
                }
            }
        }
    }
    // Cycles: a depth-first walk; an edge back to a flow on the path closes one.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    fn walk(
        i: usize,
        edges: &[Vec<(usize, crate::diagnostics::Pos, String)>],
        names: &[String],
        marks: &mut [Mark],
        path: &mut Vec<usize>,
        problems: &mut [Vec<Diagnostic>],
    ) {
        marks[i] = Mark::OnPath;
        path.push(i);
        for (j, pos, key) in &edges[i] {
            match marks[*j] {
                Mark::OnPath => {
                    let from = path.iter().position(|p| p == j).unwrap_or(0);
                    let mut chain: Vec<&str> =
                        path[from..].iter().map(|p| names[*p].as_str()).collect();
                    chain.push(names[*j].as_str());
                    problems[i].push(Diagnostic::new(
                        *pos,
                        key.clone(),
                        format!("modules call each other in a cycle: {}", chain.join(" → ")),
                    ));
                }
                Mark::New => walk(*j, edges, names, marks, path, problems),
                Mark::Done => {}
            }
        }
        path.pop();
        marks[i] = Mark::Done;
    }
    let mut marks = vec![Mark::New; flows.len()];
    for i in 0..flows.len() {
        if marks[i] == Mark::New {
            walk(
                i,
                &edges,
                &names,
                &mut marks,
                &mut Vec::new(),
                &mut problems,
            );
        }
    }
    // A flow is refused when it, or a module it reaches, has a problem.
    let mut bad: Vec<bool> = problems.iter().map(|p| !p.is_empty()).collect();
    loop {
        let mut changed = false;
        for i in 0..flows.len() {
            if !bad[i] && edges[i].iter().any(|(j, _, _)| bad[*j]) {
                let (j, pos, key) = edges[i]
                    .iter()
                    .find(|(j, _, _)| bad[*j])
                    .map(|(j, p, k)| (*j, *p, k.clone()))
                    .unwrap_or_default();
                if problems[i].is_empty() {
                    problems[i].push(Diagnostic::new(
                        pos,
                        key,
                        format!("module `{}` cannot be linked (see its problems)", names[j]),
                    ));
                }
                bad[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    // Link the good ones, modules first (the graph among them has no cycle).
    let mut linked: BTreeMap<usize, Arc<Flow>> = BTreeMap::new();
    let mut slots: Vec<Option<Flow>> = flows.into_iter().map(Some).collect();
    fn build(
        i: usize,
        edges: &[Vec<(usize, crate::diagnostics::Pos, String)>],
        names: &[String],
        slots: &mut [Option<Flow>],
        linked: &mut BTreeMap<usize, Arc<Flow>>,
    ) -> Option<Arc<Flow>> {
        if let Some(f) = linked.get(&i) {
            return Some(f.clone());
        }
        let mut f = slots[i].take()?;
        for (j, _, _) in &edges[i] {
            let m = build(*j, edges, names, slots, linked)?;
            f.modules.insert(names[*j].clone(), m);
        }
        let f = Arc::new(f);
        linked.insert(i, f.clone());
        Some(f)
    }
    let mut out = Vec::new();
    for (i, is_bad) in bad.iter().enumerate() {
        if !is_bad && build(i, &edges, &names, &mut slots, &mut linked).is_some() {
            out.push(i);
        }
    }
    for (i, p) in problems.into_iter().enumerate() {
        if p.is_empty() {
            continue;
        }
        let file = slots[i]
            .as_ref()
            .map(|f| f.file.clone())
            .unwrap_or_else(|| Path::new(&names[i]).to_path_buf());
        let source = std::fs::read_to_string(&file).unwrap_or_default();
        errors.push(FlowErrors {
            diagnostics: p.into_iter().map(|d| d.in_file(&file)).collect(),
            file,
            source,
        });
    }
    // The application keeps its own copy; the Arcs inside are shared with its callers.
    out.into_iter()
        .filter_map(|i| linked.get(&i).map(|f| Flow::clone(f)))
        .collect()
}
