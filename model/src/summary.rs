//! Keras's `model.summary()` table: layers, output shapes, parameter counts, and the
//! trainable / non-trainable totals from the parameter store.

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

/// The table for `m`.
pub(crate) fn table(m: &Model) -> String {
    let infos = m.params().infos();
    let shapes = m.output_shapes();
    let rows: Vec<[String; 3]> = m
        .layers()
        .enumerate()
        .map(|(i, l)| {
            let shape = shapes.get(i).map_or("?".to_string(), |s| {
                let dims: Vec<String> =
                    std::iter::once("None".to_string()).chain(s.iter().map(|d| d.to_string())).collect();
                format!("({})", dims.join(", "))
            });
            let params: usize = l.params().iter().map(|id| infos[id.index()].len()).sum();
            [format!("{} ({})", l.name(), l.class_name()), shape, thousands(params)]
        })
        .collect();
    let w = [33, 24, 15];
    let line = |l: char, m: char, r: char, f: char| {
        format!(
            "{l}{}{m}{}{m}{}{r}\n",
            f.to_string().repeat(w[0]),
            f.to_string().repeat(w[1]),
            f.to_string().repeat(w[2])
        )
    };
    let mut s = format!("Model: \"{}\"\n", m.name());
    s += &line('┏', '┳', '┓', '━');
    s += &format!(
        "┃ {:<a$}┃ {:<b$}┃ {:>c$} ┃\n",
        "Layer (type)",
        "Output Shape",
        "Param #",
        a = w[0] - 1,
        b = w[1] - 1,
        c = w[2] - 2
    );
    s += &line('┡', '╇', '┩', '━');
    for (i, r) in rows.iter().enumerate() {
        s += &format!("│ {:<a$}│ {:<b$}│ {:>c$} │\n", r[0], r[1], r[2], a = w[0] - 1, b = w[1] - 1, c = w[2] - 2);
        if i + 1 < rows.len() {
            s += &line('├', '┼', '┤', '─');
        }
    }
    s += &line('└', '┴', '┘', '─');
    let table = m.params().table();
    let (trainable, state) = (table.count(ParamKind::Trainable), table.count(ParamKind::NonTrainable));
    let total = trainable + state;
    s += &format!(" Total params: {} ({})\n", thousands(total), bytes(total * 4));
    s += &format!(" Trainable params: {} ({})\n", thousands(trainable), bytes(trainable * 4));
    s += &format!(" Non-trainable params: {} ({})\n", thousands(state), bytes(state * 4));
    s
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
