//! `--explain`: why the trained network decides, for 8 test digits (misclassified ones
//! first, up to three): one picture per method, each a grid of the digits with the
//! method's map blended over them (keras.io's "jet" colours) and a caption (true label,
//! predicted label and its probability; red when wrong).

use crate::pictures::{font, text};
use ember_model::data::Dataset;
use ember_model::explain::{self, heatmap, IntegratedGradients, Occlusion, Saliency, SmoothGrad, Target};
use ember_model::{Model, Tensor};
use plotters::prelude::*;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The layer Grad-CAM looks at: the last one with feature maps `[h, w, c]` that is not a
/// pooling layer (the last convolution block's output).
fn last_feature_maps(model: &Model) -> Option<String> {
    let shapes = model.output_shapes();
    model
        .layers()
        .zip(&shapes)
        .filter(|(l, s)| s.len() == 3 && s[0] > 1 && !l.class_name().contains("Pooling"))
        .last()
        .map(|(l, _)| l.name().to_string())
}

/// Writes the five pictures into `dir`; returns their paths.
pub fn draw(model: &mut Model, test: &Dataset, dir: &Path) -> Res<Vec<String>> {
    font();
    let probs = model.predict(test, 256)?;
    let pred = probs.argmax_rows();
    let labels = crate::pictures::labels_of(test)?;
    let classes = probs.shape()[1];
    let wrong = (0..test.len()).filter(|&i| pred[i] != labels[i] as usize).take(3);
    let mut picks: Vec<usize> =
        wrong.chain((0..test.len()).filter(|&i| pred[i] == labels[i] as usize)).take(8).collect();
    picks.sort_unstable();
    let shape = test.sample_shape().to_vec();
    let (h, w) = (shape[0], shape[1]);
    let x: Vec<f32> = picks.iter().map(|&i| test.sample(i)).collect::<Result<Vec<_>, _>>()?.concat();
    let images = Tensor::new([&[picks.len()][..], &shape].concat(), x)?;
    let captions: Vec<(String, bool)> = picks
        .iter()
        .map(|&i| {
            let p = pred[i];
            (format!("true {} · pred {p} ({:.2})", labels[i], probs.data()[i * classes + p]), p != labels[i] as usize)
        })
        .collect();
    let t = Target::Predicted;
    let positive = |v: &[f32]| v.iter().map(|x| x.max(0.0)).collect::<Vec<f32>>();
    let per_pixel = |a: &Tensor| -> Vec<f32> {
        let c = a.shape()[3];
        a.data().chunks(c).map(|p| p.iter().sum()).collect()
    };
    let mut maps: Vec<(&str, String, Vec<f32>)> = vec![
        (
            "saliency.png",
            "saliency: |∂ logit / ∂ pixel|".into(),
            explain::saliency(model, &images, t, Saliency::default())?.into_data(),
        ),
        (
            "smoothgrad.png",
            "SmoothGrad (20 copies, noise 15% of the range)".into(),
            explain::smooth_grad(model, &images, t, SmoothGrad::default())?.into_data(),
        ),
        (
            "integrated_gradients.png",
            "Integrated Gradients (black baseline, 64 steps), positive part".into(),
            positive(&per_pixel(&explain::integrated_gradients(
                model,
                &images,
                t,
                IntegratedGradients { steps: 64, ..Default::default() },
            )?)),
        ),
    ];
    if let Some(layer) = last_feature_maps(model) {
        let cam = explain::grad_cam(model, &images, t, &layer)?;
        maps.push(("grad_cam.png", format!("Grad-CAM at {layer}"), cam.upsampled.into_data()));
    }
    maps.push((
        "occlusion.png",
        "occlusion (4x4 black patches, stride 2): drop of the logit, positive part".into(),
        positive(explain::occlusion(model, &images, t, Occlusion::default())?.data()),
    ));
    let mut files = Vec::new();
    for (file, title, map) in maps {
        let path = dir.join(file);
        grid(&images, &map, (h, w), &title, &captions, &path)?;
        files.push(path.display().to_string());
    }
    Ok(files)
}

/// A row of images (first channel, in [0, 1]) with each one's map blended over it.
fn grid(
    images: &Tensor,
    maps: &[f32],
    (h, w): (usize, usize),
    title: &str,
    captions: &[(String, bool)],
    path: &Path,
) -> Res<()> {
    let (cols, cell, pad) = (4usize, 6i32, 16i32);
    let (tw, th) = (w as i32 * cell + pad, h as i32 * cell + pad + 18);
    let n = captions.len();
    let rows = n.div_ceil(cols);
    let size = ((cols as i32 * tw + pad) as u32, (rows as i32 * th + 44) as u32);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    root.draw(&Text::new(title.to_string(), (pad, 10), text(17.0)))?;
    let c = images.shape()[3];
    for (k, (caption, wrong)) in captions.iter().enumerate() {
        let (x0, y0) = (pad + (k % cols) as i32 * tw, 40 + (k / cols) as i32 * th);
        let grey: Vec<f32> = images.data()[k * h * w * c..(k + 1) * h * w * c].iter().step_by(c).copied().collect();
        let rgb = heatmap::overlay(&grey, &heatmap::normalise(&maps[k * h * w..(k + 1) * h * w]), 0.5)?;
        for (p, px) in rgb.chunks_exact(3).enumerate() {
            let (x, y) = (x0 + (p % w) as i32 * cell, y0 + (p / w) as i32 * cell);
            root.draw(&Rectangle::new([(x, y), (x + cell, y + cell)], RGBColor(px[0], px[1], px[2]).filled()))?;
        }
        let style = if *wrong { text(13.0).color(&RED) } else { text(13.0) };
        root.draw(&Text::new(caption.clone(), (x0, y0 + h as i32 * cell + 2), style))?;
    }
    root.present()?;
    Ok(())
}
