//! Keras's `model.summary()` table: layers, output shapes, parameter counts, and the
//! trainable / non-trainable totals from the parameter store.

use crate::model::Model;
use crate::params::ParamKind;

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
