//! Data: the IDX format (raw or gzip) and in-memory datasets of images kept as `u8` and
//! converted to f32 one batch at a time.

use crate::error::{Error, Result};
use crate::targets::{TargetBuf, Targets};
use std::io::Read;
use std::path::Path;

/// An IDX array of unsigned bytes (element type 0x08): its dimensions and its elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<u8>,
}

/// Largest expansion ratio of DEFLATE (a bound on what a gzip stream can decompress to).
const MAX_DEFLATE_RATIO: usize = 1032;

/// Parses an IDX file held in memory, raw or gzip-compressed (detected by the gzip magic).
/// The header (magic `00 00 08 ndims`, then `ndims` big-endian u32 dimensions) is checked
/// against the data length before anything proportional to the dimensions is allocated.
pub fn parse_idx(bytes: &[u8], name: &str) -> Result<Idx> {
    let err = |what: String| Error::Idx { path: name.to_string(), what };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut dec = flate2::read::GzDecoder::new(bytes);
        let mut head = [0u8; 4];
        dec.read_exact(&mut head).map_err(|e| err(format!("gzip stream: {e}")))?;
        let ndims = check_magic(head).map_err(err)?;
        let mut dims_raw = vec![0u8; 4 * ndims];
        dec.read_exact(&mut dims_raw).map_err(|e| err(format!("truncated header: {e}")))?;
        let (dims, len) = parse_dims(&dims_raw).map_err(err)?;
        // Never allocate more than the compressed input can expand to.
        if len / MAX_DEFLATE_RATIO > bytes.len() {
            return Err(err(format!(
                "dimensions {dims:?} need {len} bytes, more than {} compressed bytes can hold",
                bytes.len()
            )));
        }
        let mut data = Vec::with_capacity(len);
        dec.by_ref().take(len as u64 + 1).read_to_end(&mut data).map_err(|e| err(format!("gzip stream: {e}")))?;
        if data.len() != len {
            return Err(err(format!(
                "dimensions {dims:?} need {len} data bytes, the file has {}{}",
                if data.len() > len { "more than " } else { "" },
                data.len().min(len)
            )));
        }
        return Ok(Idx { dims, data });
    }
    if bytes.len() < 4 {
        return Err(err(format!("{} bytes: too short for the IDX magic", bytes.len())));
    }
    let ndims = check_magic([bytes[0], bytes[1], bytes[2], bytes[3]]).map_err(err)?;
    let body = &bytes[4..];
    if body.len() < 4 * ndims {
        return Err(err(format!("truncated header: {ndims} dimensions need {} bytes", 4 * ndims)));
    }
    let (dims, len) = parse_dims(&body[..4 * ndims]).map_err(err)?;
    let data = &body[4 * ndims..];
    if data.len() != len {
        return Err(err(format!("dimensions {dims:?} need {len} data bytes, the file has {}", data.len())));
    }
    Ok(Idx { dims, data: data.to_vec() })
}

fn check_magic(m: [u8; 4]) -> Result<usize, String> {
    if m[0] != 0 || m[1] != 0 {
        return Err(format!("bad magic {m:02x?}: an IDX file starts with two zero bytes"));
    }
    if m[2] != 0x08 {
        return Err(format!("element type 0x{:02x} is not supported (only unsigned bytes, 0x08)", m[2]));
    }
    if m[3] == 0 {
        return Err("zero dimensions".into());
    }
    Ok(m[3] as usize)
}

fn parse_dims(raw: &[u8]) -> Result<(Vec<usize>, usize), String> {
    let dims: Vec<usize> = raw.chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or(format!("dimensions {dims:?} overflow"))?;
    Ok((dims, len))
}

/// Reads an IDX file (raw or gzip).
pub fn read_idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_idx(&bytes, &path.display().to_string())
}

/// Sample features: bytes converted on the fly, or floats.
#[derive(Debug, Clone, PartialEq)]
enum Features {
    /// Bytes and the float each byte value stands for.
    U8 {
        data: Vec<u8>,
        lut: Box<[f32; 256]>,
    },
    F32(Vec<f32>),
}

/// A dataset: `n` samples of a per-sample shape (`[h, w, c]` images or `[features]`) and
/// their targets: one integer label each, or (after [`Dataset::with_targets`]) `width`
/// floats each.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    features: Features,
    shape: Vec<usize>,
    targets: TargetBuf,
}

impl Dataset {
    /// Byte samples, kept as bytes; a batch is converted to `byte / divisor`, rounded once
    /// from the exact quotient (Keras's `x / 255` gives the same floats).
    pub fn from_u8(data: Vec<u8>, sample_shape: Vec<usize>, labels: Vec<u32>, divisor: f32) -> Result<Self> {
        check_len(data.len(), &sample_shape, labels.len())?;
        if !(divisor.is_finite() && divisor != 0.0) {
            return Err(Error::Data(format!("divisor {divisor} must be finite and non-zero")));
        }
        let mut lut = Box::new([0f32; 256]);
        lut.iter_mut().enumerate().for_each(|(b, v)| *v = (b as f64 / f64::from(divisor)) as f32);
        Ok(Dataset { features: Features::U8 { data, lut }, shape: sample_shape, targets: TargetBuf::Labels(labels) })
    }
    /// Float samples.
    pub fn from_f32(data: Vec<f32>, sample_shape: Vec<usize>, labels: Vec<u32>) -> Result<Self> {
        check_len(data.len(), &sample_shape, labels.len())?;
        Ok(Dataset { features: Features::F32(data), shape: sample_shape, targets: TargetBuf::Labels(labels) })
    }
    /// Images and labels from two IDX arrays (`[n, h, w]` or `[n, h, w, c]` bytes, and
    /// `[n]` labels), as `byte / 255`.
    pub fn from_idx(images: Idx, labels: Idx) -> Result<Self> {
        let shape = match images.dims[..] {
            [_, h, w] => vec![h, w, 1],
            [_, h, w, c] => vec![h, w, c],
            _ => {
                return Err(Error::Data(format!("IDX images must be [n, h, w] or [n, h, w, c], got {:?}", images.dims)))
            }
        };
        if labels.dims.len() != 1 || labels.dims[0] != images.dims[0] {
            return Err(Error::Data(format!("IDX labels {:?} do not match {} images", labels.dims, images.dims[0])));
        }
        let labels = labels.data.iter().map(|&l| u32::from(l)).collect();
        Self::from_u8(images.data, shape, labels, 255.0)
    }
    /// The same samples with dense targets instead of labels: `values` holds `width` floats
    /// per sample (`[n, width]`: one-hot rows as [`crate::to_categorical`] makes them, soft
    /// class probabilities, 0 / 1 per output of a multi-label model, regression values).
    pub fn with_targets(mut self, values: Vec<f32>, width: usize) -> Result<Self> {
        if width == 0 || values.len() != self.len() * width {
            return Err(Error::Data(format!(
                "{} target values are not {width} per sample for {} samples",
                values.len(),
                self.len()
            )));
        }
        self.targets = TargetBuf::Dense { values, width };
        Ok(self)
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The per-sample shape.
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape
    }
    /// Elements per sample.
    pub fn sample_len(&self) -> usize {
        self.shape.iter().product()
    }
    /// The integer labels; `None` for a dataset with dense targets.
    pub fn labels(&self) -> Option<&[u32]> {
        match &self.targets {
            TargetBuf::Labels(l) => Some(l),
            TargetBuf::Dense { .. } => None,
        }
    }
    /// The targets: labels or dense.
    pub fn targets(&self) -> Targets<'_> {
        self.targets.as_targets()
    }
    /// Sample `i` as floats (converted); an error past the end.
    pub fn sample(&self, i: usize) -> Result<Vec<f32>> {
        if i >= self.len() {
            return Err(Error::Data(format!("sample {i} of a dataset of {}", self.len())));
        }
        let mut out = vec![0.0; self.sample_len()];
        self.gather(&[i], &mut out);
        Ok(out)
    }
    /// Samples `range` as a new dataset; an error if the range is reversed or past the end.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Dataset> {
        if range.start > range.end || range.end > self.len() {
            return Err(Error::Data(format!("samples {range:?} of a dataset of {}", self.len())));
        }
        Ok(self.slice_unchecked(range))
    }
    /// [`Dataset::slice`] of a range already known to be in bounds.
    pub(crate) fn slice_unchecked(&self, range: std::ops::Range<usize>) -> Dataset {
        let s = self.sample_len();
        let features = match &self.features {
            Features::U8 { data, lut } => {
                Features::U8 { data: data[range.start * s..range.end * s].to_vec(), lut: lut.clone() }
            }
            Features::F32(d) => Features::F32(d[range.start * s..range.end * s].to_vec()),
        };
        let mut targets = TargetBuf::default();
        targets.copy_from(self.targets().slice(range));
        Dataset { features, shape: self.shape.clone(), targets }
    }
    /// Writes samples `idx` one after another into `out` as floats.
    pub(crate) fn gather(&self, idx: &[usize], out: &mut [f32]) {
        for (&i, dst) in idx.iter().zip(out.chunks_exact_mut(self.sample_len())) {
            self.gather_range(i..i + 1, dst);
        }
    }

    /// Writes samples `range` (in bounds) into the start of `out` as floats.
    pub(crate) fn gather_range(&self, range: std::ops::Range<usize>, out: &mut [f32]) {
        let s = self.sample_len();
        let src = range.start * s..range.end * s;
        let dst = &mut out[..src.len()];
        match &self.features {
            Features::U8 { data, lut } => dst.iter_mut().zip(&data[src]).for_each(|(d, &b)| *d = lut[b as usize]),
            Features::F32(d) => dst.copy_from_slice(&d[src]),
        }
    }
}

fn check_len(len: usize, shape: &[usize], n: usize) -> Result<()> {
    let per = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if per.and_then(|p| p.checked_mul(n)) != Some(len) || per == Some(0) {
        return Err(Error::Data(format!(
            "{len} feature values do not make {n} samples of shape {shape:?} (x and y must have the same number of samples)"
        )));
    }
    Ok(())
}

/// The four MNIST files (`train-images-idx3-ubyte[.gz]`, ...) of `dir`: (train, test).
/// Any directory with the same four IDX files (28x28 grey images, labels 0-9) works.
pub fn load_mnist(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let dir = dir.as_ref();
    let find = |stem: &str| -> Result<Idx> {
        for name in [format!("{stem}.gz"), stem.to_string()] {
            let p = dir.join(&name);
            if p.exists() {
                return read_idx(p);
            }
        }
        Err(Error::io(
            dir.join(stem),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such IDX file (raw or .gz)"),
        ))
    };
    let train = Dataset::from_idx(find("train-images-idx3-ubyte")?, find("train-labels-idx1-ubyte")?)?;
    let test = Dataset::from_idx(find("t10k-images-idx3-ubyte")?, find("t10k-labels-idx1-ubyte")?)?;
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v.extend(data);
        v
    }

    fn gz(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn parses_raw_and_gzip() {
        let raw = idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        for bytes in [raw.clone(), gz(&raw)] {
            let i = parse_idx(&bytes, "t").unwrap();
            assert_eq!(i.dims, vec![2, 3]);
            assert_eq!(i.data, vec![1, 2, 3, 4, 5, 6]);
        }
    }

    #[test]
    fn malformed_files_are_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "too short"),
            (vec![1, 0, 8, 1, 0, 0, 0, 1, 0], "bad magic"),
            (vec![0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0], "element type"),
            (vec![0, 0, 8, 0], "zero dimensions"),
            (vec![0, 0, 8, 2, 0, 0, 0, 2], "truncated header"),
            (idx(&[2, 3], &[1, 2, 3]), "need 6 data bytes"),
            (idx(&[2, 3], &[0; 7]), "need 6 data bytes"),
            (idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "overflow"),
        ];
        for (bytes, want) in cases {
            for b in [bytes.clone(), gz(&bytes)] {
                let e = parse_idx(&b, "t").unwrap_err().to_string();
                assert!(e.contains(want) || (b != bytes && e.contains("gzip")), "{e} (wanted {want})");
            }
        }
        // Dimensions that promise far more than the compressed bytes can hold are refused
        // before allocating.
        let e = parse_idx(&gz(&idx(&[1 << 20, 1 << 12], &[0; 16])), "t").unwrap_err().to_string();
        assert!(e.contains("compressed bytes can hold"), "{e}");
    }

    #[test]
    fn datasets_check_lengths() {
        assert!(Dataset::from_u8(vec![0; 10], vec![2, 2, 1], vec![0, 1], 1.0).is_err());
        assert!(Dataset::from_u8(vec![0; 8], vec![2, 2, 1], vec![0, 1], 0.0).is_err());
        assert!(Dataset::from_f32(vec![0.0; 8], vec![2, 2, 1], vec![0, 1, 2]).is_err());
        let d = Dataset::from_u8(vec![0, 255, 51, 0, 1, 2, 3, 4], vec![2, 2, 1], vec![0, 1], 255.0).unwrap();
        assert_eq!(d.sample(0).unwrap(), vec![0.0, 1.0, 0.2, 0.0]);
    }
}
