//! Saving and loading a model: its weights as a safetensors file (Keras's names and
//! layouts) and checkpoints (weights, optimizer state, epochs done, the random generator;
//! written by [`crate::trainer::checkpoint`]). Files are written atomically.

use super::Model;
use crate::error::{Error, Result};
use crate::io::Record;
use std::path::Path;

impl Model {
    /// The weights as safetensors bytes (Keras's names and layouts).
    pub fn weights_to_bytes(&self) -> Result<Vec<u8>> {
        self.weights_record()?.to_bytes()
    }

    /// Saves the weights (safetensors, Keras's names and layouts), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.weights_record()?.write(path)
    }

    pub(crate) fn weights_record(&self) -> Result<Record> {
        if !self.graph.built {
            return Err(Error::Config("the model has no weights yet: compile (or build) it first".into()));
        }
        let mut r = self.store.to_record();
        r.metadata.insert("format".into(), "ember-weights-1".into());
        Ok(r)
    }

    /// Loads weights saved by [`Model::save_weights`] (or a checkpoint's weights) into this
    /// model, which must have the same layers. Every tensor must be present with its shape;
    /// nothing is changed unless all are.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_bytes(&bytes, &path.display().to_string(), false)
    }

    /// [`Model::load_weights`] or (with `checkpoint`) [`Model::load_checkpoint`] from
    /// bytes; `name` names the source in errors.
    pub fn load_bytes(&mut self, bytes: &[u8], name: &str, checkpoint: bool) -> Result<()> {
        self.build()?;
        let record = Record::from_bytes(bytes, name)?;
        if checkpoint {
            crate::trainer::checkpoint::restore(self, &record, name)
        } else {
            self.store.load_record(&record, name)
        }
    }

    /// Saves weights, optimizer state, epochs done and the random generator's state,
    /// atomically.
    pub fn save_checkpoint(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::trainer::checkpoint::record(self)?.write(path)
    }

    /// Restores a checkpoint written by [`Model::save_checkpoint`]: weights, optimizer
    /// state, epochs done and the random generator (the model must be compiled with the same
    /// optimizer kind).
    pub fn load_checkpoint(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        self.load_bytes(&bytes, &path.display().to_string(), true)
    }
}
