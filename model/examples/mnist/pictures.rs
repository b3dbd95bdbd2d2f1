//! The pictures of a training run, as PNG files (plotters' bitmap backend; text in the
//! vendored DejaVu Sans, so nothing depends on the system's fonts).

use ember_model::data::Dataset;
use ember_model::{History, Model};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const FONT: &str = "dejavu";

/// Registers the vendored font once.
pub fn font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = register_font(FONT, FontStyle::Normal, include_bytes!("assets/DejaVuSans.ttf"));
    });
}

pub fn text(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// A diverging colour for `v` in [-1, 1]: blue (negative), white, red (positive).
fn diverging(v: f32) -> RGBColor {
    let v = v.clamp(-1.0, 1.0);
    let (a, b) = if v >= 0.0 { (v, 0.0) } else { (0.0, -v) };
    let c = |x: f32| (255.0 * (1.0 - x)) as u8;
    RGBColor(if v >= 0.0 { 255 } else { c(b) }, c(a.max(b)), if v <= 0.0 { 255 } else { c(a) })
}

/// A grey level (0 white .. 1 black, as ink on paper).
fn ink(v: f32) -> RGBColor {
    let g = (255.0 * (1.0 - v.clamp(0.0, 1.0))) as u8;
    RGBColor(g, g, g)
}

/// Draws a `h x w` image of values with `color` into the area at pixel `(x0, y0)`, each
/// value a `cell x cell` square.
#[allow(clippy::too_many_arguments)]
fn draw_image<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    vals: &[f32],
    h: usize,
    w: usize,
    x0: i32,
    y0: i32,
    cell: i32,
    color: impl Fn(f32) -> RGBColor,
) -> Res<()>
where
    DB::ErrorType: 'static,
{
    for r in 0..h {
        for c in 0..w {
            let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
            area.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color(vals[r * w + c]).filled()))?;
        }
    }
    Ok(())
}

/// Training loss and accuracy, per batch (running epoch means) and per epoch (filled
/// markers), and the validation figures per epoch (black, hollow) when there are any.
fn curves(history: &History, batches: &[(f64, f32, f32)], path: &Path) -> Res<()> {
    let root = BitMapBackend::new(path, (1100, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(550);
    let epochs = history.epochs.len().max(1) as f64;
    let val = if history.epochs.iter().any(|e| e.val_loss.is_some()) { " (validation in black)" } else { "" };
    let max_loss = batches.iter().map(|b| b.1).fold(0.0f32, f32::max).max(0.05) as f64;
    let mut c = ChartBuilder::on(&left)
        .caption(format!("loss{val}"), text(20.0))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..epochs, 0.0..max_loss * 1.05)?;
    c.configure_mesh().x_desc("epoch").label_style(text(13.0)).axis_desc_style(text(14.0)).draw()?;
    c.draw_series(LineSeries::new(batches.iter().map(|b| (b.0, f64::from(b.1))), BLUE.mix(0.5)))?;
    c.draw_series(history.epochs.iter().map(|e| Circle::new((e.epoch as f64, f64::from(e.loss)), 4, BLUE.filled())))?;
    // Validation (when there is validation data): hollow markers joined by a line.
    let val_loss: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| e.val_loss.map(|v| (e.epoch as f64, f64::from(v)))).collect();
    c.draw_series(LineSeries::new(val_loss.iter().copied(), BLACK))?;
    c.draw_series(val_loss.iter().map(|&p| Circle::new(p, 4, BLACK)))?;
    let min_acc = batches.iter().map(|b| b.2).fold(1.0f32, f32::min).min(0.95) as f64;
    let mut c = ChartBuilder::on(&right)
        .caption(format!("accuracy{val}"), text(20.0))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..epochs, min_acc..1.0)?;
    c.configure_mesh().x_desc("epoch").label_style(text(13.0)).axis_desc_style(text(14.0)).draw()?;
    c.draw_series(LineSeries::new(batches.iter().map(|b| (b.0, f64::from(b.2))), RED.mix(0.5)))?;
    c.draw_series(
        history.epochs.iter().map(|e| Circle::new((e.epoch as f64, f64::from(e.accuracy)), 4, RED.filled())),
    )?;
    let val_acc: Vec<(f64, f64)> =
        history.epochs.iter().filter_map(|e| e.val_accuracy.map(|v| (e.epoch as f64, f64::from(v)))).collect();
    c.draw_series(LineSeries::new(val_acc.iter().copied(), BLACK))?;
    c.draw_series(val_acc.iter().map(|&p| Circle::new(p, 4, BLACK)))?;
    root.present()?;
    Ok(())
}

/// The first layer's filters (HWIO `[kh, kw, 1, f]`), one square each, colour-scaled
/// to the largest magnitude.
fn filters(model: &Model, path: &Path) -> Res<()> {
    let id = model.params().find("conv2d/kernel").ok_or("the model has no conv2d/kernel")?;
    let shape = &model.params().table().info(id).shape;
    let value = model.params().to_keras(id);
    let (kh, kw, f) = (shape[0], shape[1], shape[3]);
    let scale = value.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let (cols, cell, pad) = (8usize, 16i32, 10i32);
    let rows = f.div_ceil(cols);
    let (tw, th) = (kw as i32 * cell + pad, kh as i32 * cell + pad + 14);
    let root =
        BitMapBackend::new(path, ((cols as i32 * tw + pad) as u32, (rows as i32 * th + 40) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    root.draw(&Text::new(format!("conv2d filters ({kh}x{kw}, blue < 0 < red)"), (pad, 8), text(16.0)))?;
    for i in 0..f {
        let vals: Vec<f32> = (0..kh * kw).map(|t| value[t * f + i] / scale).collect();
        let (x0, y0) = (pad + (i % cols) as i32 * tw, 34 + (i / cols) as i32 * th);
        draw_image(&root, &vals, kh, kw, x0, y0, cell, diverging)?;
        root.draw(&Text::new(format!("{i}"), (x0, y0 + kh as i32 * cell + 1), text(11.0)))?;
    }
    root.present()?;
    Ok(())
}

/// One test digit and the first layer's feature maps for it.
fn feature_maps(model: &mut Model, test: &Dataset, path: &Path) -> Res<()> {
    let labels = labels_of(test)?;
    let layer = model.layers().next().ok_or("the model has no layers")?.name().to_string();
    let maps = model.layer_output(test, 0, &layer)?;
    let [h, w, c] = [maps.shape()[0], maps.shape()[1], maps.shape()[2]];
    let (cols, cell, pad) = (8usize, 3i32, 8i32);
    let digit = test.sample(0)?;
    let (dh, dw) = (test.sample_shape()[0], test.sample_shape()[1]);
    let tw = w as i32 * cell + pad;
    let width = (dw as i32 * 6 + 2 * pad + cols as i32 * tw) as u32;
    let height = (40 + (c.div_ceil(cols) as i32) * (h as i32 * cell + pad)).max(40 + dh as i32 * 6) as u32;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE)?;
    root.draw(&Text::new(
        format!("test digit 0 (label {}) and its {c} feature maps after {layer} + ReLU", labels[0]),
        (pad, 8),
        text(16.0),
    ))?;
    draw_image(&root, &digit, dh, dw, pad, 34, 6, ink)?;
    let x_base = dw as i32 * 6 + 2 * pad;
    for ch in 0..c {
        let m: Vec<f32> = (0..h * w).map(|i| maps.data()[i * c + ch]).collect();
        let mx = m.iter().fold(0f32, |a, &b| a.max(b)).max(1e-6);
        let vals: Vec<f32> = m.iter().map(|v| v / mx).collect();
        let (x0, y0) = (x_base + (ch % cols) as i32 * tw, 34 + (ch / cols) as i32 * (h as i32 * cell + pad));
        draw_image(&root, &vals, h, w, x0, y0, cell, ink)?;
    }
    root.present()?;
    Ok(())
}

/// The confusion matrix of the test set (rows: true label, columns: prediction).
/// The test set's labels (the pictures name classes by them).
pub fn labels_of(test: &Dataset) -> Res<&[u32]> {
    Ok(test.labels().ok_or("the pictures need a test set with integer labels, not dense targets")?)
}

fn confusion(pred: &[usize], labels: &[u32], classes: usize, path: &Path) -> Res<()> {
    let mut m = vec![0usize; classes * classes];
    for (&p, &l) in pred.iter().zip(labels) {
        m[l as usize * classes + p] += 1;
    }
    let cell = 52i32;
    let (x0, y0) = (70i32, 70i32);
    let size = (x0 + classes as i32 * cell + 20) as u32;
    let root = BitMapBackend::new(path, (size, size + 10)).into_drawing_area();
    root.fill(&WHITE)?;
    root.draw(&Text::new("confusion matrix (rows: true, columns: predicted)", (10, 10), text(16.0)))?;
    let row_max = |r: usize| m[r * classes..(r + 1) * classes].iter().sum::<usize>().max(1);
    for r in 0..classes {
        root.draw(&Text::new(format!("{r}"), (x0 - 22, y0 + r as i32 * cell + cell / 2 - 8), text(15.0)))?;
        root.draw(&Text::new(format!("{r}"), (x0 + r as i32 * cell + cell / 2 - 5, y0 - 24), text(15.0)))?;
        for c in 0..classes {
            let v = m[r * classes + c];
            let frac = v as f32 / row_max(r) as f32;
            let color = if r == c {
                RGBColor(255 - (frac * 180.0) as u8, 255 - (frac * 90.0) as u8, 255 - (frac * 180.0) as u8)
            } else {
                let f = (frac * 20.0).min(1.0);
                RGBColor(255, 255 - (f * 200.0) as u8, 255 - (f * 200.0) as u8)
            };
            let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], color.filled()))?;
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(200, 200, 200)))?;
            root.draw(&Text::new(format!("{v}"), (x + 6, y + cell / 2 - 7), text(13.0)))?;
        }
    }
    root.present()?;
    Ok(())
}

/// Up to 40 misclassified test digits, each with "true → predicted".
fn misclassified(test: &Dataset, pred: &[usize], path: &Path) -> Res<()> {
    let labels = labels_of(test)?;
    let wrong: Vec<usize> = (0..test.len()).filter(|&i| pred[i] != labels[i] as usize).take(40).collect();
    let (h, w) = (test.sample_shape()[0], test.sample_shape()[1]);
    let (cols, cell, pad) = (10usize, 3i32, 12i32);
    let (tw, th) = (w as i32 * cell + pad, h as i32 * cell + pad + 16);
    let rows = wrong.len().div_ceil(cols).max(1);
    let root =
        BitMapBackend::new(path, ((cols as i32 * tw + pad) as u32, (rows as i32 * th + 40) as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let total = (0..test.len()).filter(|&i| pred[i] != labels[i] as usize).count();
    root.draw(&Text::new(
        format!("misclassified test digits ({total} in all): true → predicted"),
        (pad, 8),
        text(16.0),
    ))?;
    for (k, &i) in wrong.iter().enumerate() {
        let (x0, y0) = (pad + (k % cols) as i32 * tw, 34 + (k / cols) as i32 * th);
        draw_image(&root, &test.sample(i)?, h, w, x0, y0, cell, ink)?;
        root.draw(&Text::new(format!("{} → {}", labels[i], pred[i]), (x0 + 14, y0 + h as i32 * cell + 1), text(13.0)))?;
    }
    root.present()?;
    Ok(())
}

/// Writes every picture into `dir`; returns the file names.
pub fn draw_all(
    model: &mut Model,
    history: &History,
    batches: &[(f64, f32, f32)],
    test: &Dataset,
    dir: &Path,
) -> Res<Vec<String>> {
    let labels = labels_of(test)?;
    font();
    let pred = model.predict(test, 256)?.argmax_rows();
    let classes = model.output_shapes().last().map_or(10, |s| s[0]);
    let mut files = Vec::new();
    let mut out = |name: &str| {
        files.push(dir.join(name).display().to_string());
        dir.join(name)
    };
    curves(history, batches, &out("training_curves.png"))?;
    filters(model, &out("filters.png"))?;
    feature_maps(model, test, &out("feature_maps.png"))?;
    confusion(&pred, labels, classes, &out("confusion_matrix.png"))?;
    misclassified(test, &pred, &out("misclassified.png"))?;
    Ok(files)
}
