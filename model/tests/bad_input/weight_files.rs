//! Weight files and checkpoints.

use super::*;

#[test]
fn weight_files_reject_bad_input() {
    let dir = std::env::temp_dir().join(format!("ember-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = model().weights_to_bytes().unwrap();
    let other = {
        let mut m = seed_model(12, 6, 4, 1);
        compile_adam(&mut m);
        m.weights_to_bytes().unwrap()
    };
    let (g1, g2) = (good.clone(), good.clone());
    let missing = dir.join("missing.safetensors");
    let (m1, m2) = (missing.clone(), missing);
    let target = dir.join("no-such-dir").join("w.safetensors");
    run(vec![
        case!("weights: garbage", Error::Weights { .. }, model().load_bytes(b"not a safetensors file", "x", false)),
        case!("weights: truncated", Error::Weights { .. }, model().load_bytes(&g1[..g1.len() - 3], "x", false)),
        case!("weights: another architecture", Error::Weights { .. }, model().load_bytes(&other, "x", false)),
        case!("checkpoint: a weights file", Error::Weights { .. }, model().load_bytes(&g2, "x", true)),
        case!("weights: missing file", Error::Io { .. }, model().load_weights(&m1)),
        case!("checkpoint: missing file", Error::Io { .. }, model().load_checkpoint(&m2)),
        case!(
            "checkpoint: save before compile",
            Error::NotCompiled,
            seed_model(12, 4, 4, 1).save_checkpoint(Path::new("/tmp/unused-ember-ckpt"))
        ),
        case!("weights: save before build", Error::Config(_), seed_model(12, 4, 4, 1).weights_to_bytes()),
        case!("atomic write into a missing directory", Error::Io { .. }, write_atomic(&target, b"x")),
        case!("keras values of the wrong length", Error::Config(_), {
            let mut m = model();
            let k = m.params().find("conv2d/kernel").unwrap();
            m.params_mut().set_from_keras(k, &[0.0; 3])
        }),
    ]);
    std::fs::remove_dir_all(&dir).ok();
}
