//! Checkpoints: the weights record plus the optimizer's slots (`optimizer/<tensor>/<slot>`,
//! in Keras's layouts), and in the metadata the optimizer's name and step count, the epochs
//! done and the random generator's state, so a resumed run continues exactly as an
//! uninterrupted one.

use crate::error::{Error, Result};
use crate::io::{werr, Record};
use crate::model::Model;
use crate::optimizers::OptimizerState;
use crate::params::ParamKind;
use crate::rng::Rng;

const FORMAT: &str = "ember-checkpoint-1";

/// The checkpoint record of a compiled model.
pub(crate) fn record(m: &Model) -> Result<Record> {
    let opt = m.optimizer().ok_or(Error::NotCompiled)?;
    let mut r = m.weights_record()?;
    let state = opt.state();
    let table = m.params().table();
    for (name, slot) in opt.slot_names().iter().zip(&state.slots) {
        for info in table.infos().iter().filter(|i| i.kind == ParamKind::Trainable) {
            let v = &slot[info.offset()..info.offset() + info.len()];
            r.tensors.push((format!("optimizer/{}/{name}", info.name), info.shape.clone(), info.to_keras(v)));
        }
    }
    r.metadata.insert("format".into(), FORMAT.into());
    r.metadata.insert("optimizer".into(), opt.name().into());
    r.metadata.insert("iterations".into(), state.iterations.to_string());
    r.metadata.insert("epochs_done".into(), m.epochs_done().to_string());
    r.metadata.insert("rng_state".into(), m.rng.state().to_string());
    Ok(r)
}

/// Restores weights, optimizer state, epochs done and the generator from `r`; nothing
/// changes unless all of it fits.
pub(crate) fn restore(m: &mut Model, r: &Record, source: &str) -> Result<()> {
    if r.metadata.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(werr(source, format!("not an Ember checkpoint (format {:?})", r.metadata.get("format"))));
    }
    let num = |k: &str| r.number(k).map_err(|e| werr(source, e));
    let (iterations, epochs, rng) = (num("iterations")?, num("epochs_done")?, num("rng_state")?);
    let opt = m.optimizer().ok_or(Error::NotCompiled)?;
    if r.metadata.get("optimizer").map(String::as_str) != Some(opt.name()) {
        return Err(werr(
            source,
            format!("checkpoint optimizer {:?}, the model uses {}", r.metadata.get("optimizer"), opt.name()),
        ));
    }
    let table = m.params().table().clone();
    let mut slots = Vec::new();
    if r.tensors.iter().any(|(n, _, _)| n.starts_with("optimizer/")) {
        for name in opt.slot_names() {
            let mut arena = vec![0.0; table.trainable_len()];
            for info in table.infos().iter().filter(|i| i.kind == ParamKind::Trainable) {
                let v = r.get(&format!("optimizer/{}/{name}", info.name), &info.shape).map_err(|e| werr(source, e))?;
                info.from_keras(v, &mut arena[info.offset()..info.offset() + info.len()])?;
            }
            slots.push(arena);
        }
    }
    let mut store = m.store.clone();
    store.load_record(r, source)?;
    let c = m.train.compiled.as_mut().ok_or(Error::NotCompiled)?;
    c.optimizer.load_state(OptimizerState { iterations, slots })?;
    m.store = store;
    m.train.epochs_done = epochs as usize;
    m.rng = Rng::from_state(rng);
    Ok(())
}
