//! Strided matrix views: the checked description of an operand that every GEMM entry point
//! takes. Element `(i, j)` lives at `data[i * row_stride + j * col_stride]`, so row-major,
//! column-major and transposed operands are all just strides ([`MatRef::t`] costs nothing).

use crate::error::{Error, Result};

/// Index one past the last element a `rows x cols` view with these strides touches
/// (0 for an empty view), or `None` on overflow.
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    if rows == 0 || cols == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(rs)?.checked_add((cols - 1).checked_mul(cs)?)?.checked_add(1)
}

fn check_extent(name: &'static str, len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> Result<()> {
    let needed = extent(rows, cols, rs, cs).ok_or(Error::SizeOverflow { name })?;
    if needed > len {
        return Err(Error::BufferTooSmall { name, needed, len });
    }
    Ok(())
}

/// Read-only `rows x cols` view of an `f32` buffer with arbitrary (non-negative) strides.
#[derive(Debug, Clone, Copy)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// A view with the given strides; fails if some element would lie past the buffer.
    /// Zero strides (broadcast operands) are allowed for inputs.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Result<Self> {
        check_extent("matrix view", data.len(), rows, cols, row_stride, col_stride)?;
        Ok(MatRef { data, rows, cols, rs: row_stride, cs: col_stride })
    }

    /// Dense row-major view: `data.len()` must be exactly `rows * cols`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense("matrix view", data.len(), rows, cols)?;
        Self::new(data, rows, cols, cols, 1)
    }

    /// Dense column-major view: `data.len()` must be exactly `rows * cols`.
    pub fn col_major(data: &'a [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense("matrix view", data.len(), rows, cols)?;
        Self::new(data, rows, cols, 1, rows)
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    /// Distance between columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }
    /// The underlying buffer.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }
    /// Element `(i, j)`, or `None` outside the view.
    pub fn get(&self, i: usize, j: usize) -> Option<f32> {
        (i < self.rows && j < self.cols).then(|| self.data[i * self.rs + j * self.cs])
    }
    /// Element `(i, j)`, indexing like a slice (for references and tests).
    ///
    /// # Panics
    /// When `(i, j)` is outside the view; [`MatRef::get`] returns `None` instead.
    pub fn at(&self, i: usize, j: usize) -> f32 {
        self.get(i, j).unwrap_or_else(|| panic!("({i},{j}) outside {}x{}", self.rows, self.cols))
    }
}

fn check_dense(name: &'static str, len: usize, rows: usize, cols: usize) -> Result<()> {
    let needed = rows.checked_mul(cols).ok_or(Error::SizeOverflow { name })?;
    if needed != len {
        return Err(Error::ShapeMismatch { what: "dense buffer length vs rows*cols", expected: needed, got: len });
    }
    Ok(())
}

/// Mutable `rows x cols` view with arbitrary strides that never map two elements onto the
/// same memory. The check is the usual sufficient one: sorted by stride, each dimension
/// must step over the whole extent of the smaller one (so interleaved layouts are refused).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatMut<'a> {
    /// A view with the given strides; fails if an element lies past the buffer or two
    /// elements overlap.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> Result<Self> {
        let name = "output view";
        check_extent(name, data.len(), rows, cols, row_stride, col_stride)?;
        let overlap = Error::OverlappingOutput { name, rows, cols, row_stride, col_stride };
        if rows > 0 && cols > 0 && (rows > 1 || cols > 1) {
            // Dimensions of extent 1 never step, so their stride is irrelevant.
            let mut dims = [(row_stride, rows), (col_stride, cols)];
            dims.sort_unstable();
            let [(s_small, n_small), (s_big, n_big)] = dims;
            let ok = if n_small <= 1 {
                s_big > 0
            } else if n_big <= 1 {
                s_small > 0
            } else {
                s_small > 0 && (n_small - 1) * s_small < s_big
            };
            if !ok {
                return Err(overlap);
            }
        }
        Ok(MatMut { data, rows, cols, rs: row_stride, cs: col_stride })
    }

    /// Dense row-major view: `data.len()` must be exactly `rows * cols`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense("output view", data.len(), rows, cols)?;
        Self::new(data, rows, cols, cols, 1)
    }

    /// Dense column-major view: `data.len()` must be exactly `rows * cols`.
    pub fn col_major(data: &'a mut [f32], rows: usize, cols: usize) -> Result<Self> {
        check_dense("output view", data.len(), rows, cols)?;
        Self::new(data, rows, cols, 1, rows)
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        MatMut { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// A shorter-lived mutable view of the same elements.
    pub fn rb_mut(&mut self) -> MatMut<'_> {
        MatMut { data: self.data, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs }
    }

    /// A read-only view of the same elements.
    pub fn as_ref(&self) -> MatRef<'_> {
        MatRef { data: self.data, rows: self.rows, cols: self.cols, rs: self.rs, cs: self.cs }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Distance between rows, in elements.
    pub fn row_stride(&self) -> usize {
        self.rs
    }
    /// Distance between columns, in elements.
    pub fn col_stride(&self) -> usize {
        self.cs
    }

    /// Element `(i, j)` mutably, or `None` outside the view.
    pub fn get_mut(&mut self, i: usize, j: usize) -> Option<&mut f32> {
        (i < self.rows && j < self.cols).then(|| &mut self.data[i * self.rs + j * self.cs])
    }
    /// Element `(i, j)` mutably, indexing like a slice (for references and tests).
    ///
    /// # Panics
    /// When `(i, j)` is outside the view; [`MatMut::get_mut`] returns `None` instead.
    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f32 {
        let (rows, cols) = (self.rows, self.cols);
        self.get_mut(i, j).unwrap_or_else(|| panic!("({i},{j}) outside {rows}x{cols}"))
    }

    /// Applies `f` to every element, row by row.
    pub fn for_each(&mut self, mut f: impl FnMut(usize, usize, &mut f32)) {
        for i in 0..self.rows {
            for j in 0..self.cols {
                f(i, j, &mut self.data[i * self.rs + j * self.cs]);
            }
        }
    }

    /// Raw parts for the GEMM driver, which splits the view into disjoint tiles.
    pub(crate) fn raw_parts(&mut self) -> (*mut f32, usize, usize) {
        (self.data.as_mut_ptr(), self.rs, self.cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_and_overlap() {
        let mut buf = vec![0.0f32; 12];
        assert!(MatMut::new(&mut buf, 3, 4, 4, 1).is_ok());
        assert!(MatMut::new(&mut buf, 3, 4, 1, 3).is_ok());
        assert!(matches!(MatMut::new(&mut buf, 3, 4, 4, 2), Err(Error::BufferTooSmall { .. })));
        assert!(matches!(MatMut::new(&mut buf, 3, 4, 2, 1), Err(Error::OverlappingOutput { .. })));
        assert!(matches!(MatMut::new(&mut buf, 3, 4, 0, 1), Err(Error::OverlappingOutput { .. })));
        assert!(MatMut::new(&mut buf, 1, 4, 0, 1).is_ok());
        assert!(MatMut::new(&mut buf, 0, 4, 0, 0).is_ok());
        assert!(MatRef::new(&buf, 3, 4, 0, 0).is_ok());
        assert!(matches!(MatRef::new(&buf, 2, 2, usize::MAX, 1), Err(Error::SizeOverflow { .. })));
        assert!(matches!(MatRef::row_major(&buf, 3, 3), Err(Error::ShapeMismatch { .. })));
    }
}
