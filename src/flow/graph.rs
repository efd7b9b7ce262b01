//! The block graph of a phase group (the call blocks, or the finalize blocks): blocks nothing
//! leads to, and loops that never wait for the caller.

use std::collections::HashMap;

use super::load::Parsed;
use super::model::AppKind;
use crate::yaml::Diagnostic;

/// Reachability from the first block, and loops that never wait for the caller.
pub(super) fn check(
    parsed: &[Parsed<'_>],
    ids: &HashMap<String, usize>,
    end: usize,
    kind: AppKind,
    diags: &mut Vec<Diagnostic>,
) {
    let edges: Vec<Vec<usize>> = (0..end)
        .map(|i| {
            let b = &parsed[i].block;
            let mut out: Vec<usize> = b
                .branches()
                .iter()
                .filter_map(|(_, t)| ids.get(t).copied())
                .collect();
            if b.falls_through(kind) {
                match b.next() {
                    Some(n) => out.extend(ids.get(n).copied()),
                    None if i + 1 < end => out.push(i + 1),
                    None => {}
                }
            }
            out.retain(|&t| t < end);
            out
        })
        .collect();
    let mut seen = vec![false; end];
    let mut stack = vec![0];
    while let Some(i) = stack.pop() {
        if i >= end || seen[i] {
            continue;
        }
        seen[i] = true;
        stack.extend(edges[i].iter().copied());
    }
    for (i, s) in seen.iter().enumerate() {
        if !s {
            let p = &parsed[i];
            diags.push(Diagnostic::new(
                p.node.pos,
                p.path.clone(),
                format!(
                    "block `{}` can never run: nothing leads to it",
                    p.block.id().unwrap_or(p.block.type_name())
                ),
            ));
        }
    }
    // A cycle is fine if some block on it waits for the caller.
    for mut scc in sccs(&edges) {
        scc.sort_unstable();
        let is_cycle = scc.len() > 1 || edges[scc[0]].contains(&scc[0]);
        if is_cycle && !scc.iter().any(|&i| parsed[i].block.waits()) {
            let p = &parsed[scc[0]];
            let names: Vec<String> = scc
                .iter()
                .map(|&i| {
                    parsed[i]
                        .block
                        .id()
                        .unwrap_or(parsed[i].block.type_name())
                        .to_string()
                })
                .collect();
            diags.push(Diagnostic::new(
                p.node.pos,
                p.path.clone(),
                format!(
                    "blocks {} form a loop that never waits for the caller",
                    names.join(" → ")
                ),
            ));
        }
    }
}

/// Strongly connected components (Tarjan, iterative).
fn sccs(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on = vec![false; n];
    let mut stack = Vec::new();
    let mut out = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        while let Some(&mut (v, ref mut ei)) = work.last_mut() {
            if *ei == 0 && index[v] == usize::MAX {
                index[v] = counter;
                low[v] = counter;
                counter += 1;
                stack.push(v);
                on[v] = true;
            }
            if let Some(&w) = edges[v].get(*ei) {
                *ei += 1;
                if index[w] == usize::MAX {
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                out.push(comp);
            }
        }
    }
    out
}
