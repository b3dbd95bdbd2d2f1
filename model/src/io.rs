//! Weight files and checkpoints: a [`Record`] of named f32 tensors and string metadata,
//! stored as safetensors, and the atomic file write. A record knows nothing of models: the
//! parameter store turns itself into one (Keras's names and layouts: `conv2d/kernel` HWIO
//! `[kh, kw, cin, cout]`, `dense/kernel` `[in, out]`, `*/bias`), and a checkpoint adds the
//! optimizer's slots (`optimizer/conv2d/kernel/m`) and, in the metadata, the step count,
//! the epochs done and the random generator's state.
//!
//! Files are written atomically: a temporary file in the same directory, flushed to disk,
//! then renamed over the target; a failure midway leaves the previous file intact.

use crate::error::{Error, Result};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// Named tensors (name, shape, row-major values) and metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    /// The tensors, in the order they are written.
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    /// String metadata (`format`, `iterations`, ...).
    pub metadata: HashMap<String, String>,
}

impl Record {
    /// The values of tensor `name`, which must have `shape`; the error says what is wrong.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<&[f32], String> {
        let (_, s, v) =
            self.tensors.iter().find(|(n, _, _)| n == name).ok_or_else(|| format!("missing tensor {name}"))?;
        if s != shape {
            return Err(format!("{name}: shape {s:?}, expected {shape:?}"));
        }
        Ok(v)
    }

    /// A metadata value parsed as a number; the error names the key.
    pub fn number(&self, key: &str) -> Result<u64, String> {
        self.metadata
            .get(key)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("metadata {key} missing or not a number"))
    }

    /// The safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let bytes: Vec<Vec<u8>> =
            self.tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
        let views = self
            .tensors
            .iter()
            .zip(&bytes)
            .map(|((n, s, _), b)| {
                Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b).map_err(|e| werr("<memory>", e.to_string()))?))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, &Some(self.metadata.clone())).map_err(|e| werr("<memory>", e.to_string()))
    }

    /// Parses safetensors bytes (every tensor must be F32); `source` names them in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<Record> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| werr(source, format!("not a safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| werr(source, e.to_string()))?;
        let mut tensors = Vec::with_capacity(st.len());
        let mut names = st.names();
        names.sort();
        for name in names {
            let t = st.tensor(name).map_err(|e| werr(source, e.to_string()))?;
            if t.dtype() != Dtype::F32 {
                return Err(werr(source, format!("{name}: {:?}, expected F32", t.dtype())));
            }
            let v = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            tensors.push((name.clone(), t.shape().to_vec(), v));
        }
        Ok(Record { tensors, metadata: header.metadata().clone().unwrap_or_default() })
    }

    /// Reads and parses a file.
    pub fn read(path: impl AsRef<Path>) -> Result<Record> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Record::from_bytes(&bytes, &path.display().to_string())
    }

    /// Writes the record to `path` atomically.
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }
}

pub(crate) fn werr(path: &str, what: impl Into<String>) -> Error {
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
