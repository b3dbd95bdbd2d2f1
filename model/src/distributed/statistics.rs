//! Batch statistics across ranks: the partials of a reduction (batch normalization's
//! moments and sums) that every rank needs from every other (see [`super`]).

use super::Collective;
use crate::error::{Error, Result};
use crate::graph::reduction::Partial;

/// Every rank's partials of a reduction in rank order, which is the batch's part order
/// (ranks hold contiguous shards, shards their parts in order): the ranks all-gather their
/// own (each led by a status: 1 if its segment failed), so every rank reduces the same
/// values in the same order. An error on every rank when one failed.
pub(crate) fn gather_partials(comm: &dyn Collective, mine: Option<&[&Partial]>) -> Result<Vec<Partial>> {
    let mut values = vec![f64::from(u8::from(mine.is_none()))];
    mine.into_iter().flatten().for_each(|p| p.encode(&mut values));
    let mut all = Vec::new();
    let mut failed = None;
    for (root, values) in comm.all_gather_f64(&values)?.into_iter().enumerate() {
        let malformed = || Error::Distributed(format!("rank {root} sent malformed batch statistics"));
        let Some((&status, mut rest)) = values.split_first() else { return Err(malformed()) };
        if status != 0.0 {
            failed.get_or_insert(root);
            continue;
        }
        while !rest.is_empty() {
            let (p, after) = Partial::decode(rest).ok_or_else(malformed)?;
            all.push(p);
            rest = after;
        }
    }
    match failed {
        Some(bad) => Err(Error::Distributed(format!("rank {bad} failed (its output says why); stopping"))),
        None => Ok(all),
    }
}

#[cfg(test)]
mod tests {
    use super::gather_partials;
    use crate::distributed::ThreadGroup;
    use crate::graph::reduction::Partial;
    use ember_kernels::batchnorm::PartMoments;

    /// Rank `r`'s partials: `r + 1` of them, every value telling rank and index apart.
    fn partials_of(r: usize) -> Vec<Partial> {
        (0..=r)
            .map(|i| {
                let v = (10 * r + i) as f64;
                let m =
                    PartMoments::from_values(8 + i, vec![v as f32 + 0.5, -1.25], vec![v, 1.0, v * v, 1e-300]).unwrap();
                Partial { rows: 8 + r, moments: vec![m.clone(), m], sums: vec![vec![v, -v, 3.5], vec![]] }
            })
            .collect()
    }

    fn encoded(parts: &[Partial]) -> Vec<u64> {
        let mut v = Vec::new();
        parts.iter().for_each(|p| p.encode(&mut v));
        v.into_iter().map(f64::to_bits).collect()
    }

    /// Runs `f(comm)` on three ranks; their results in rank order.
    fn on_three<T: Send>(f: impl Fn(ThreadGroup) -> T + Sync) -> Vec<T> {
        std::thread::scope(|s| {
            let handles: Vec<_> = ThreadGroup::new(3).into_iter().map(|g| s.spawn(|| f(g))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn every_rank_gets_every_partial_in_rank_order() {
        let want: Vec<Partial> = (0..3).flat_map(partials_of).collect();
        let got = on_three(|g| {
            let mine = partials_of(crate::distributed::Collective::rank(&g));
            let refs: Vec<&Partial> = mine.iter().collect();
            gather_partials(&g, Some(&refs)).unwrap()
        });
        for all in &got {
            assert_eq!(encoded(all), encoded(&want));
        }
        // A rank with no parts (no shard of a small batch) sends none.
        let got = on_three(|g| {
            let r = crate::distributed::Collective::rank(&g);
            let mine = if r == 1 { Vec::new() } else { partials_of(r) };
            gather_partials(&g, Some(&mine.iter().collect::<Vec<_>>())).unwrap()
        });
        let want: Vec<Partial> = [0, 2].into_iter().flat_map(partials_of).collect();
        assert!(got.iter().all(|all| encoded(all) == encoded(&want)));
    }

    #[test]
    fn a_rank_whose_segment_failed_stops_every_rank() {
        let got = on_three(|g| {
            let r = crate::distributed::Collective::rank(&g);
            let mine = partials_of(r);
            let refs: Vec<&Partial> = mine.iter().collect();
            gather_partials(&g, (r != 1).then_some(&refs[..])).map(|_| ()).unwrap_err().to_string()
        });
        assert!(got.iter().all(|e| e.contains("rank 1 failed")), "{got:?}");
    }

    #[test]
    fn malformed_partials_are_an_error_not_a_panic() {
        let p = &partials_of(2)[2];
        let mut v = Vec::new();
        p.encode(&mut v);
        for cut in 0..v.len() {
            if let Some((_, rest)) = Partial::decode(&v[..cut]) {
                panic!("{cut} of {} values decoded, {} left", v.len(), rest.len());
            }
        }
        assert!(Partial::decode(&v).is_some_and(|(_, rest)| rest.is_empty()));
        for bad in [-1.0, 0.5, f64::NAN, f64::INFINITY] {
            let mut w = v.clone();
            w[1] = bad;
            assert!(Partial::decode(&w).is_none(), "a count of {bad}");
        }
    }
}
