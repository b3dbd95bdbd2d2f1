//! Keras's `model.summary()` table: layers, output shapes, parameter counts, and the
//! trainable / non-trainable totals from the parameter store.

use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::layers::Flops;
use crate::model::Model;
use crate::params::ParamKind;

/// The operations of one training step over `batch` samples, per layer (direct count; see
/// [`Flops`]): the forward pass always, the weight gradient where the layer has weights,
/// the input gradient where the plan computes it (not for the first layer with weights).
pub(crate) fn training_flops(m: &Model, batch: usize) -> Vec<(String, Flops)> {
    let g = &m.graph;
    let needs = m.plan.as_ref().map(|p| (p.root.clone(), p.needs_grad.clone()));
    (1..g.nodes.len())
        .filter_map(|i| {
            let l = g.layer(i)?;
            let f = l.flops(batch);
            let dx = needs.as_ref().is_some_and(|(root, ng)| g.nodes[i].inputs.iter().any(|&j| ng[root[j]]));
            let dw = !l.params().is_empty();
            let kept = Flops {
                forward: f.forward,
                backward_data: if dx { f.backward_data } else { 0 },
                backward_weights: if dw { f.backward_weights } else { 0 },
            };
            Some((l.name().to_string(), kept))
        })
        .collect()
}

/// A table of [`training_flops`] in MFLOP, with the total.
pub(crate) fn flops_table(m: &Model, batch: usize) -> String {
    let rows = training_flops(m, batch);
    let mf = |v: u64| format!("{:.1}", v as f64 / 1e6);
    let mut s = format!("Training step of {batch} samples, MFLOP (direct count):\n");
    s += &format!("{:<24}{:>12}{:>12}{:>12}{:>12}\n", "layer", "forward", "bwd-data", "bwd-weights", "total");
    let mut t = Flops::default();
    for (name, f) in &rows {
        let total = f.forward + f.backward_data + f.backward_weights;
        s += &format!(
            "{:<24}{:>12}{:>12}{:>12}{:>12}\n",
            name,
            mf(f.forward),
            mf(f.backward_data),
            mf(f.backward_weights),
            mf(total)
        );
        t.forward += f.forward;
        t.backward_data += f.backward_data;
        t.backward_weights += f.backward_weights;
    }
    let total = t.forward + t.backward_data + t.backward_weights;
    s += &format!(
        "{:<24}{:>12}{:>12}{:>12}{:>12}\n",
        "total",
        mf(t.forward),
        mf(t.backward_data),
        mf(t.backward_weights),
        mf(total)
    );
    s
}

/// Keras's `model.summary()` text for `m` (no colours) at `line_length` (`None`: Keras's
/// default, 88 for a sequential-like model and 108 otherwise, which it prints in a
/// terminal at least 4 columns wider; into a pipe it prints at 76). Errors where a
/// column would be narrower than 4 characters, as Keras does.
///
/// The rows and columns are Keras's: a `Sequential` lists its layers; a functional model
/// also its input (`input_layer`), in Keras's order (deepest from the output first, ties in
/// the order a depth-first walk from the output meets them), with a "Connected to" column
/// unless it is a chain. The layout is what `rich` makes of Keras's column positions: each
/// column's width plus its padding reduced evenly to fit, cells wrapped at spaces, a word
/// wider than its column cut with an ellipsis.
pub(crate) fn table(m: &Model, line_length: Option<usize>) -> Result<String> {
    let g = &m.graph;
    let (order, chain) = if m.functional { keras_order(g) } else { ((1..g.nodes.len()).collect(), true) };
    let infos = m.params().infos();
    let name = |i: usize| g.layer(i).map_or("input_layer", |l| l.name());
    let rows: Vec<Vec<String>> = order
        .iter()
        .map(|&i| {
            let node = &g.nodes[i];
            let class = g.layer(i).map_or("InputLayer", |l| l.class_name());
            let shape = match &node.shape {
                Some(s) if g.built || i == 0 => {
                    let dims: Vec<String> =
                        std::iter::once("None".into()).chain(s.iter().map(|d| d.to_string())).collect();
                    format!("({})", dims.join(", "))
                }
                _ => "?".into(),
            };
            let params: usize = g.layer(i).map_or(0, |l| l.params().iter().map(|id| infos[id.index()].len()).sum());
            let mut row = vec![format!("{} ({class})", name(i)), shape, thousands(params)];
            if !chain {
                let from: Vec<String> = node.inputs.iter().map(|&j| format!("{}[0][0]", name(j))).collect();
                row.push(if from.is_empty() { "-".into() } else { from.join(", ") });
            }
            row
        })
        .collect();
    let (default, positions, header): (usize, &[f64], &[&str]) = if chain {
        (88, &[0.45, 0.80, 1.0], &["Layer (type)", "Output Shape", "Param #"])
    } else {
        (108, &[0.3, 0.56, 0.74, 1.0], &["Layer (type)", "Output Shape", "Param #", "Connected to"])
    };
    let widths = column_widths(line_length.unwrap_or(default), positions)?;
    let rule = |l: char, m: char, r: char, f: char| {
        let cells: Vec<String> = widths.iter().map(|&w| f.to_string().repeat(w)).collect();
        format!("{l}{}{r}\n", cells.join(&m.to_string()))
    };
    let mut s = format!("Model: \"{}\"\n", m.name());
    s += &rule('┏', '┳', '┓', '━');
    s += &table_row(&widths, &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(), '┃');
    s += &rule('┡', '╇', '┩', '━');
    for (k, r) in rows.iter().enumerate() {
        s += &table_row(&widths, r, '│');
        s += &if k + 1 < rows.len() { rule('├', '┼', '┤', '─') } else { rule('└', '┴', '┘', '─') };
    }
    if rows.is_empty() {
        s += &rule('└', '┴', '┘', '─');
    }
    let table = m.params().table();
    let (trainable, state) = (table.count(ParamKind::Trainable), table.count(ParamKind::NonTrainable));
    let optimizer = optimizer_variables(m, trainable);
    let (count, size) = optimizer.unwrap_or((0, 0));
    let total = trainable + state + count;
    s += &format!(" Total params: {} ({})\n", thousands(total), bytes((trainable + state) * 4 + size));
    s += &format!(" Trainable params: {} ({})\n", thousands(trainable), bytes(trainable * 4));
    s += &format!(" Non-trainable params: {} ({})\n", thousands(state), bytes(state * 4));
    if optimizer.is_some() {
        s += &format!(" Optimizer params: {} ({})\n", thousands(count), bytes(size));
    }
    Ok(s)
}

/// Keras's count and size in bytes of a built optimizer's variables, which `summary` adds
/// to the totals once the optimizer has run a step (Keras builds it then): a slot of
/// `trainable` floats per name, the step counter (an int64) and, for a constant learning
/// rate, the rate (an f32). `None` before the first step or without `compile`.
fn optimizer_variables(m: &Model, trainable: usize) -> Option<(usize, usize)> {
    let o = &m.train.compiled.as_ref()?.optimizer;
    if o.iterations() == 0 {
        return None;
    }
    let slots = o.slot_names().len() * trainable;
    let rate = usize::from(o.constant_learning_rate());
    Some((slots + 1 + rate, slots * 4 + 8 + rate * 4))
}

/// A functional graph's nodes in the order of Keras's `model._operations` (by depth from
/// the output, deepest first; ties by the order a depth-first walk from the output, inputs
/// in order, first meets them), and whether it is "sequential-like" (one node per depth,
/// none with several inputs), which Keras prints without "Connected to".
fn keras_order(g: &Graph) -> (Vec<usize>, bool) {
    let n = g.nodes.len();
    // Depth: the longest path to the output (nodes are in topological order).
    let mut depth = vec![0usize; n];
    for i in (0..n).rev() {
        for &j in &g.nodes[i].inputs {
            depth[j] = depth[j].max(depth[i] + 1);
        }
    }
    let mut first_met = vec![usize::MAX; n];
    let (mut met, mut stack) = (0, vec![g.output()]);
    while let Some(i) = stack.pop() {
        if first_met[i] == usize::MAX {
            first_met[i] = met;
            met += 1;
            stack.extend(g.nodes[i].inputs.iter().rev());
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(depth[i]), first_met[i]));
    let chain = order.windows(2).all(|w| depth[w[0]] != depth[w[1]]) && g.nodes.iter().all(|x| x.inputs.len() <= 1);
    (order, chain)
}

/// The rendered widths (padding included) of columns that end at `positions` (fractions)
/// of `line_length`, as `rich` lays out Keras's table: each column's width plus 2 of
/// padding, reduced evenly (Python's rounding) until they and the borders fit the line.
fn column_widths(line_length: usize, positions: &[f64]) -> Result<Vec<usize>> {
    let mut widths = Vec::with_capacity(positions.len());
    let mut current = 0;
    for &p in positions {
        let end = (p * line_length as f64) as usize;
        let width = end.saturating_sub(current);
        if width < 4 {
            return Err(Error::Config(format!("a summary line of {line_length} characters is too narrow")));
        }
        widths.push(width + 2);
        current = end;
    }
    let room = line_length - (positions.len() + 1);
    let mut excess = widths.iter().sum::<usize>().saturating_sub(room);
    let mut left = widths.len();
    for w in &mut widths {
        let cut = ((excess as f64 / left as f64).round_ties_even() as usize).min(*w);
        *w -= cut;
        excess -= cut;
        left -= 1;
    }
    Ok(widths)
}

/// One row of cells (the third column, the parameter count, right-aligned as Keras aligns
/// "Param #"), each wrapped into its column; `bar` the vertical border.
fn table_row(widths: &[usize], cells: &[String], bar: char) -> String {
    let wrapped: Vec<Vec<String>> = cells.iter().zip(widths).map(|(c, &w)| wrap(c, w.saturating_sub(2))).collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut s = String::new();
    for line in 0..height {
        s.push(bar);
        for (col, (lines, &w)) in wrapped.iter().zip(widths).enumerate() {
            let text = lines.get(line).map_or("", String::as_str);
            let w = w.saturating_sub(2);
            if col == 2 {
                s += &format!(" {text:>w$} {bar}");
            } else {
                s += &format!(" {text:<w$} {bar}");
            }
        }
        s.push('\n');
    }
    s
}

/// `text` in lines of at most `width` characters, as `rich` wraps a table cell: greedily
/// at spaces, a word wider than the line on a line of its own and cut to `width - 1`
/// characters and an ellipsis.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        let used = line.chars().count();
        if used > 0 && used + 1 + len <= width {
            line.push(' ');
            line.push_str(word);
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
        }
        line = if len > width {
            word.chars().take(width.saturating_sub(1)).chain(['…']).collect()
        } else {
            word.to_string()
        };
    }
    lines.push(line);
    lines
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(b: usize) -> String {
    match b {
        b if b >= 1 << 20 => format!("{:.2} MB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2} KB", b as f64 / 1024.0),
        b => format!("{b}.00 B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_number_formats() {
        assert_eq!(thousands(54410), "54,410");
        assert_eq!(bytes(54410 * 4), "212.54 KB");
        assert_eq!(bytes(0), "0.00 B");
    }
}
