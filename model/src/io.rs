//! Weights and checkpoints in safetensors, with Keras's names and layouts
//! (`conv2d/kernel` HWIO `[kh, kw, cin, cout]`, `dense/kernel` `[in, out]`, `*/bias`).
//!
//! A checkpoint adds the optimizer's slots (`optimizer/conv2d/kernel/m`), and in the
//! metadata its step count, the epochs done and the random generator's state, so a resumed
//! run continues exactly as an uninterrupted one. Files are written atomically: a temporary
//! file in the same directory, flushed to disk, then renamed over the target; a failure
//! midway leaves the previous file intact.

use crate::error::{Error, Result};
use crate::layers::Param;
use crate::optimizers::{OptimizerState, Slot};
use crate::rng::Rng;
use crate::sequential::Sequential;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

const FORMAT: &str = "ember-checkpoint-1";

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn werr(path: &str, what: impl Into<String>) -> Error {
    Error::Weights { path: path.to_string(), what: what.into() }
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| werr(&path.display().to_string(), "not a file path"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

impl Sequential {
    /// The weights as safetensors bytes.
    pub fn weights_to_bytes(&self) -> Result<Vec<u8>> {
        self.serialize(false)
    }

    /// Saves the weights (safetensors, Keras names and layouts), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.serialize(false)?)
    }

    /// Saves weights, optimizer state, epochs done and the random generator's state,
    /// atomically.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.serialize(true)?)
    }

    fn serialize(&self, checkpoint: bool) -> Result<Vec<u8>> {
        if checkpoint && self.optimizer().is_none() {
            return Err(Error::NotCompiled);
        }
        if self.output_shapes().is_empty() {
            return Err(Error::Config("the model has no weights yet: compile (or build) it first".into()));
        }
        let params = self.named_params();
        let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> =
            params.iter().map(|(n, p)| (n.clone(), p.shape.clone(), to_bytes(&p.to_keras()))).collect();
        let mut meta =
            HashMap::from([("format".to_string(), if checkpoint { FORMAT } else { "ember-weights-1" }.to_string())]);
        if checkpoint {
            let opt = self.optimizer().ok_or(Error::NotCompiled)?;
            let state = opt.state();
            for s in &state.slots {
                let (name, p) = &params[s.param];
                // Slots share their parameter's storage layout; written in Keras's.
                let slot = Param { value: s.value.clone(), ..(*p).clone() };
                owned.push((format!("optimizer/{name}/{}", s.name), p.shape.clone(), to_bytes(&slot.to_keras())));
            }
            meta.insert("optimizer".into(), opt.name().into());
            meta.insert("iterations".into(), state.iterations.to_string());
            meta.insert("epochs_done".into(), self.epochs_done().to_string());
            meta.insert("rng_state".into(), self.rng().state().to_string());
        }
        let views = owned
            .iter()
            .map(|(n, s, b)| {
                Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| werr("<memory>", e.to_string()))?))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, &Some(meta)).map_err(|e| werr("<memory>", e.to_string()))
    }

    /// Loads weights saved by [`Sequential::save_weights`] (or a checkpoint's weights) into
    /// this model, which must have the same layers. Every tensor must be present with its
    /// shape; nothing is changed unless all are.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_bytes(&bytes, &path.display().to_string(), false)
    }

    /// Restores a checkpoint written by [`Sequential::save_checkpoint`]: weights, optimizer
    /// state, epochs done and the random generator (the model must be compiled with the same
    /// optimizer kind).
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_bytes(&bytes, &path.display().to_string(), true)
    }

    /// [`Sequential::load_weights`] / [`Sequential::load_checkpoint`] from bytes; `name`
    /// names the source in errors.
    pub fn load_bytes(&mut self, bytes: &[u8], name: &str, checkpoint: bool) -> Result<()> {
        self.build()?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| werr(name, format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| werr(name, e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let read = |tname: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let t = st.tensor(tname).map_err(|_| werr(name, format!("missing tensor {tname}")))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                return Err(werr(name, format!("{tname}: {:?} {:?}, expected F32 {shape:?}", t.dtype(), t.shape())));
            }
            Ok(t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        };
        let templates: Vec<Param> = self.named_params().into_iter().map(|(_, p)| p.clone()).collect();
        let params: Vec<(String, Vec<usize>)> =
            self.named_params().into_iter().map(|(n, p)| (n, p.shape.clone())).collect();
        // From Keras's layout to the parameter's storage layout.
        let stored = |i: usize, v: Vec<f32>| -> Result<Vec<f32>> {
            let mut p = templates[i].clone();
            p.set_from_keras(&v)?;
            Ok(p.value)
        };
        let mut values = Vec::with_capacity(params.len());
        for (i, (n, shape)) in params.iter().enumerate() {
            values.push(stored(i, read(n, shape)?)?);
        }
        for t in st.names() {
            if !t.starts_with("optimizer/") && !params.iter().any(|(n, _)| n == t) {
                return Err(werr(name, format!("tensor {t} belongs to no layer of this model")));
            }
        }
        let mut restore = None;
        if checkpoint {
            if meta.get("format").map(String::as_str) != Some(FORMAT) {
                return Err(werr(name, format!("not an Ember checkpoint (format {:?})", meta.get("format"))));
            }
            let num = |k: &str| -> Result<u64> {
                meta.get(k)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| werr(name, format!("metadata {k} missing or not a number")))
            };
            let (iterations, epochs, rng) = (num("iterations")?, num("epochs_done")?, num("rng_state")?);
            let opt = self.optimizer().ok_or(Error::NotCompiled)?;
            if meta.get("optimizer").map(String::as_str) != Some(opt.name()) {
                return Err(werr(
                    name,
                    format!("checkpoint optimizer {:?}, the model uses {}", meta.get("optimizer"), opt.name()),
                ));
            }
            // The slot names this optimizer kind keeps, in its order, for every parameter.
            let kinds: Vec<&'static str> = match opt.name() {
                "adam" => vec!["m", "v"],
                _ => vec!["velocity"],
            };
            let mut slots = Vec::new();
            let any_slots = st.names().iter().any(|t| t.starts_with("optimizer/"));
            if any_slots {
                for (i, (n, shape)) in params.iter().enumerate() {
                    for k in &kinds {
                        let value = stored(i, read(&format!("optimizer/{n}/{k}"), shape)?)?;
                        slots.push(Slot { name: k, param: i, value });
                    }
                }
            }
            restore = Some((OptimizerState { iterations, slots }, epochs as usize, rng));
        }
        for (p, v) in self.layers_mut().iter_mut().flat_map(|l| l.params_mut().iter_mut()).zip(values) {
            p.value = v;
        }
        if let Some((state, epochs, rng)) = restore {
            self.optimizer_mut().ok_or(Error::NotCompiled)?.load_state(state)?;
            self.set_epochs_done(epochs);
            self.set_rng(Rng::from_state(rng));
        }
        Ok(())
    }
}
