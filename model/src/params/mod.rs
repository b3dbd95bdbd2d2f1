//! The parameter store: every tensor a model learns (kernels, biases) or keeps (moving
//! statistics), named as Keras names it, in two flat arenas of values and gradients.
//!
//! Layers declare their tensors while they are built ([`ParamBuilder::declare`]) and keep
//! only the [`ParamId`]s; everything else (optimizers, the gradient hook, weight files,
//! checkpoints, summaries) speaks to the store. Trainable tensors come first, in the order
//! they were declared, then the non-trainable ones; each starts on a 64-byte boundary, and
//! the gaps between them hold zeros (values and gradients), which every elementwise update
//! leaves at zero. So an optimizer updates all trainable tensors with one vectorised pass over
//! [`ParamStore::trainable_mut`], and an all-reduce of the gradients is one message.

use crate::error::{Error, Result};
use crate::io::Record;

mod arena;
pub use arena::Arena;
use arena::ALIGN;

/// A tensor's handle in its store (its declaration index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamId(usize);

impl ParamId {
    /// The declaration index.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Whether the optimizer updates a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Learned: has a gradient, updated by the optimizer.
    Trainable,
    /// State kept by a layer (batch normalization's moving statistics): no gradient.
    NonTrainable,
}

/// How a tensor's values are stored relative to Keras's layout of its `shape`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As Keras lays it out (row-major `shape`).
    Keras,
    /// A 2-D `shape` `[r, c]` stored transposed (`[c, r]`): a dense kernel kept `[out, in]`
    /// for the dense-layer kernels.
    Transposed,
}

/// One tensor's description.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamInfo {
    /// Keras's full name: `conv2d/kernel`, `dense_1/bias`.
    pub name: String,
    /// Keras's shape (`[kh, kw, cin, cout]` for a convolution kernel, `[in, out]` for a
    /// dense one).
    pub shape: Vec<usize>,
    /// Trainable or state.
    pub kind: ParamKind,
    /// Storage layout.
    pub layout: Layout,
    offset: usize,
    len: usize,
}

impl ParamInfo {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Where the tensor starts in its arena (the trainable arena for trainable tensors,
    /// else in [`ParamStore::values`] after the trainable part).
    pub fn offset(&self) -> usize {
        self.offset
    }
    fn range(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.len
    }
    /// `v` (storage layout, `len` elements) in Keras's layout.
    pub fn to_keras(&self, v: &[f32]) -> Vec<f32> {
        match self.layout {
            Layout::Keras => v.to_vec(),
            Layout::Transposed => {
                let (r, c) = (self.shape[0], self.shape[1]);
                (0..r * c).map(|k| v[(k % c) * r + k / c]).collect()
            }
        }
    }
    /// Writes `keras` (Keras's layout) into `out` (storage layout); both `len` long.
    pub fn from_keras(&self, keras: &[f32], out: &mut [f32]) -> Result<()> {
        if keras.len() != self.len || out.len() != self.len {
            return Err(Error::Config(format!("{}: {} values for shape {:?}", self.name, keras.len(), self.shape)));
        }
        match self.layout {
            Layout::Keras => out.copy_from_slice(keras),
            Layout::Transposed => {
                let (r, c) = (self.shape[0], self.shape[1]);
                for (k, &x) in keras.iter().enumerate() {
                    out[(k % c) * r + k / c] = x;
                }
            }
        }
        Ok(())
    }
}

/// The names, shapes and places of a store's tensors (without their values), for code that
/// reads values and writes gradients in buffers of its own.
#[derive(Debug, Clone, Default)]
pub struct ParamTable {
    infos: Vec<ParamInfo>,
    /// Floats of the trainable part (padding included): the length of a gradient arena.
    trainable_len: usize,
    /// Floats of both parts.
    total_len: usize,
}

impl ParamTable {
    /// Every tensor, in declaration order.
    pub fn infos(&self) -> &[ParamInfo] {
        &self.infos
    }
    /// The tensor `id`.
    pub fn info(&self, id: ParamId) -> &ParamInfo {
        &self.infos[id.0]
    }
    /// All ids, in declaration order.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> {
        (0..self.infos.len()).map(ParamId)
    }
    /// The id of the tensor named `name` (`conv2d/kernel`).
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.infos.iter().position(|i| i.name == name).map(ParamId)
    }
    /// Floats of a gradient arena (the trainable part, padding included).
    pub fn trainable_len(&self) -> usize {
        self.trainable_len
    }
    /// Number of elements of the tensors of `kind` (no padding).
    pub fn count(&self, kind: ParamKind) -> usize {
        self.infos.iter().filter(|i| i.kind == kind).map(|i| i.len).sum()
    }
    fn value_range(&self, id: ParamId) -> std::ops::Range<usize> {
        let i = &self.infos[id.0];
        match i.kind {
            ParamKind::Trainable => i.range(),
            ParamKind::NonTrainable => self.trainable_len + i.offset..self.trainable_len + i.offset + i.len,
        }
    }
}

/// Collects the tensors layers declare while a model is built, then lays them out.
#[derive(Debug, Default)]
pub struct ParamBuilder {
    pending: Vec<(ParamInfo, Vec<f32>)>,
}

impl ParamBuilder {
    /// Declares a tensor with its initial `value` in storage layout (`shape`'s element
    /// count); returns its id.
    pub fn declare(
        &mut self,
        name: String,
        shape: Vec<usize>,
        kind: ParamKind,
        layout: Layout,
        value: Vec<f32>,
    ) -> Result<ParamId> {
        let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if len != Some(value.len()) || (layout == Layout::Transposed && shape.len() != 2) {
            return Err(Error::Config(format!("{name}: {} values for shape {shape:?}", value.len())));
        }
        self.pending.push((ParamInfo { name, shape, kind, layout, offset: 0, len: value.len() }, value));
        Ok(ParamId(self.pending.len() - 1))
    }

    /// The store: trainable tensors first, each on a 64-byte boundary.
    pub fn finish(self) -> Result<ParamStore> {
        let mut table = ParamTable::default();
        for kind in [ParamKind::Trainable, ParamKind::NonTrainable] {
            let mut at = 0usize;
            for (info, _) in self.pending.iter().filter(|(i, _)| i.kind == kind) {
                at = at.next_multiple_of(ALIGN);
                at = at.checked_add(info.len).ok_or_else(|| Error::Config("parameter count overflows".into()))?;
            }
            match kind {
                ParamKind::Trainable => table.trainable_len = at.next_multiple_of(ALIGN),
                ParamKind::NonTrainable => table.total_len = table.trainable_len + at,
            }
        }
        let mut values = Arena::zeros(table.total_len)?;
        let grads = Arena::zeros(table.trainable_len)?;
        let mut next = [0usize; 2];
        for (mut info, v) in self.pending {
            let k = (info.kind == ParamKind::NonTrainable) as usize;
            info.offset = next[k].next_multiple_of(ALIGN);
            next[k] = info.offset + info.len;
            table.infos.push(info);
            let id = ParamId(table.infos.len() - 1);
            values.as_mut_slice()[table.value_range(id)].copy_from_slice(&v);
        }
        Ok(ParamStore { table, values, grads, version: new_version() })
    }
}

/// The tensors of a model: one table, one value arena (trainable part first), one gradient
/// arena (the trainable part's length).
#[derive(Debug, Clone, Default)]
pub struct ParamStore {
    table: ParamTable,
    values: Arena,
    grads: Arena,
    /// The values' version: a number no other values in this process had, new whenever
    /// they may change (every `&mut` access to them). The convolutions pass it with their
    /// filters, so a Winograd pass reuses the filter transform an earlier part of the same
    /// step made (`ember_kernels::Ctx::weights_version`). A clone keeps it: the same values.
    version: u64,
}

/// A version no values had before ([`ParamStore`]'s `version`).
fn new_version() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl ParamStore {
    /// The names, shapes and places.
    pub fn table(&self) -> &ParamTable {
        &self.table
    }
    /// Every tensor, in declaration order.
    pub fn infos(&self) -> &[ParamInfo] {
        &self.table.infos
    }
    /// The id of the tensor named `name` (`conv2d/kernel`).
    pub fn find(&self, name: &str) -> Option<ParamId> {
        self.table.find(name)
    }
    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.table.infos.len()
    }
    /// Whether the store holds no tensors.
    pub fn is_empty(&self) -> bool {
        self.table.infos.is_empty()
    }
    /// The values of `id` (storage layout).
    pub fn value(&self, id: ParamId) -> &[f32] {
        &self.values.as_slice()[self.table.value_range(id)]
    }
    /// The values of `id`, mutable.
    pub fn value_mut(&mut self, id: ParamId) -> &mut [f32] {
        self.version = new_version();
        let r = self.table.value_range(id);
        &mut self.values.as_mut_slice()[r]
    }
    /// The gradient of trainable `id` from the last backward pass (empty for state).
    pub fn grad(&self, id: ParamId) -> &[f32] {
        match self.table.info(id).kind {
            ParamKind::Trainable => &self.grads.as_slice()[self.table.info(id).range()],
            ParamKind::NonTrainable => &[],
        }
    }
    /// The whole value arena (trainable part, then state).
    pub fn values(&self) -> &[f32] {
        self.values.as_slice()
    }
    /// The whole gradient arena.
    pub fn grads(&self) -> &[f32] {
        self.grads.as_slice()
    }
    /// The gradient arena, mutable (a gradient hook's view).
    pub fn grads_mut(&mut self) -> &mut [f32] {
        self.grads.as_mut_slice()
    }
    /// The trainable values and their gradients, as two arenas of one length: what an
    /// optimizer updates.
    pub fn trainable_mut(&mut self) -> (&mut [f32], &[f32]) {
        self.version = new_version();
        let n = self.table.trainable_len;
        (&mut self.values.as_mut_slice()[..n], self.grads.as_slice())
    }
    /// [`ParamStore::trainable_mut`] with the gradients writable too: for an optimizer that
    /// sums a batch's shards into the gradient arena as it steps.
    pub(crate) fn trainable_and_grads_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        self.version = new_version();
        let n = self.table.trainable_len;
        (&mut self.values.as_mut_slice()[..n], self.grads.as_mut_slice())
    }
    /// Read-only values and the writable gradient arena, for a backward pass.
    pub(crate) fn split_mut(&mut self) -> (Weights<'_>, &mut [f32]) {
        (
            Weights { table: &self.table, values: self.values.as_slice(), version: self.version },
            self.grads.as_mut_slice(),
        )
    }
    /// Read-only values.
    pub(crate) fn weights(&self) -> Weights<'_> {
        Weights { table: &self.table, values: self.values.as_slice(), version: self.version }
    }
    /// Copies every value (trainable and state) from `other`, a store of the same tensors
    /// (a snapshot taken with `clone`, as Keras's `get_weights` / `set_weights`).
    pub fn copy_values_from(&mut self, other: &ParamStore) -> Result<()> {
        if other.table.infos != self.table.infos {
            return Err(Error::Config("the stores hold different tensors".into()));
        }
        self.values.as_mut_slice().copy_from_slice(other.values.as_slice());
        self.version = new_version();
        Ok(())
    }
    /// The values of `id` in Keras's layout.
    pub fn to_keras(&self, id: ParamId) -> Vec<f32> {
        self.table.info(id).to_keras(self.value(id))
    }
    /// Sets the values of `id` from Keras's layout.
    pub fn set_from_keras(&mut self, id: ParamId, keras: &[f32]) -> Result<()> {
        let info = self.table.info(id).clone();
        info.from_keras(keras, self.value_mut(id))
    }
    /// Every tensor in Keras's names and layouts.
    pub fn to_record(&self) -> Record {
        let mut r = Record::default();
        for id in self.table.ids() {
            let i = self.table.info(id);
            r.tensors.push((i.name.clone(), i.shape.clone(), self.to_keras(id)));
        }
        r
    }
    /// Loads every tensor from `record` (Keras's names and layouts): all must be there with
    /// their shapes, and nothing else but tensors whose names start with `optimizer/`;
    /// nothing changes unless all fit. `source` names the record in errors.
    pub fn load_record(&mut self, record: &Record, source: &str) -> Result<()> {
        let werr = |what: String| Error::Weights { path: source.to_string(), what };
        for (name, _, _) in &record.tensors {
            if !name.starts_with("optimizer/") && self.table.find(name).is_none() {
                return Err(werr(format!("tensor {name} belongs to no layer of this model")));
            }
        }
        let mut staged = self.values.clone();
        for id in self.table.ids() {
            let info = self.table.info(id);
            let v = record.get(&info.name, &info.shape).map_err(werr)?;
            info.from_keras(v, &mut staged.as_mut_slice()[self.table.value_range(id)])?;
        }
        self.values = staged;
        self.version = new_version();
        Ok(())
    }
}

/// Read access to a store's values by id: what a layer's passes see.
#[derive(Debug, Clone, Copy)]
pub struct Weights<'a> {
    table: &'a ParamTable,
    values: &'a [f32],
    version: u64,
}

impl<'a> Weights<'a> {
    /// The values' version: no other values in this process had it (see [`ParamStore`]).
    pub fn version(&self) -> u64 {
        self.version
    }
    /// The values of `id`.
    pub fn get(&self, id: ParamId) -> &'a [f32] {
        &self.values[self.table.value_range(id)]
    }
    /// The table.
    pub fn table(&self) -> &'a ParamTable {
        self.table
    }
}

/// The gradients of `a` and, if given, `b` (two different trainable tensors) in the
/// gradient arena `grads`.
pub(crate) fn grads_of<'g>(
    table: &ParamTable,
    grads: &'g mut [f32],
    a: ParamId,
    b: Option<ParamId>,
) -> (&'g mut [f32], Option<&'g mut [f32]>) {
    let ra = table.info(a).range();
    let Some(b) = b else { return (&mut grads[ra], None) };
    let rb = table.info(b).range();
    if ra.start < rb.start {
        let (lo, hi) = grads.split_at_mut(rb.start);
        (&mut lo[ra], Some(&mut hi[..rb.len()]))
    } else {
        let (lo, hi) = grads.split_at_mut(ra.start);
        (&mut hi[..ra.len()], Some(&mut lo[rb]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_aligns_and_orders_trainable_first() {
        let mut b = ParamBuilder::default();
        let s = b.declare("bn/mean".into(), vec![3], ParamKind::NonTrainable, Layout::Keras, vec![7.0; 3]).unwrap();
        let k = b
            .declare(
                "d/kernel".into(),
                vec![2, 3],
                ParamKind::Trainable,
                Layout::Transposed,
                (0..6).map(|v| v as f32).collect(),
            )
            .unwrap();
        let bias = b.declare("d/bias".into(), vec![3], ParamKind::Trainable, Layout::Keras, vec![1.0; 3]).unwrap();
        let store = b.finish().unwrap();
        assert_eq!(store.table().trainable_len(), 32);
        assert_eq!(store.infos()[k.index()].offset(), 0);
        assert_eq!(store.infos()[bias.index()].offset(), 16);
        assert_eq!(store.value(s), &[7.0; 3]);
        assert!(store.grad(s).is_empty());
        assert_eq!(store.values().as_ptr().align_offset(64), 0);
        // Stored [out, in]: Keras's [in, out] row-major is the transpose.
        assert_eq!(store.to_keras(k), vec![0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
        assert_eq!(store.table().count(ParamKind::Trainable), 9);
        assert_eq!(store.table().count(ParamKind::NonTrainable), 3);
        let copy = store.clone();
        assert_eq!(copy.values().as_ptr().align_offset(64), 0);
        assert_eq!(copy.values(), store.values());
    }
}
