//! Buffers by liveness: which values (and gradients) of a plan share a buffer, and which
//! get one part's buffer ([`super::segments`]).

use super::plan::{PlanOp, Slots};
use super::segments::PartLocal;

/// Assigns activation and gradient buffers by liveness. Times: forward of op `k` at `2k`,
/// the loss at `2K`, backward of op `k` at `4K - 2k` (after the loss, in reverse). The
/// part-local values and gradients (`local`) get one-part slots apart, shared between
/// segments (a part's run through a segment touches only its own segment's).
pub(crate) fn liveness(
    ops: &[PlanOp],
    n: usize,
    len: &[usize],
    output: usize,
    (keep, wrt): (Option<usize>, &[usize]),
    train: bool,
    local: &PartLocal,
) -> (Slots, Slots) {
    let k_end = 2 * ops.len();
    let bw = |k: usize| 4 * ops.len() - 2 * k;
    // [first, last] use of each node's activation and gradient.
    let mut act: Vec<Option<(usize, usize)>> = vec![None; n];
    let mut grad: Vec<Option<(usize, usize)>> = vec![None; n];
    let touch = |v: &mut Option<(usize, usize)>, t: usize| {
        *v = Some(v.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    };
    for (k, op) in ops.iter().enumerate() {
        touch(&mut act[op.output], 2 * k);
        for &j in &op.inputs {
            touch(&mut act[j], 2 * k);
        }
        if train && op.backward {
            touch(&mut act[op.output], bw(k));
            touch(&mut grad[op.output], bw(k));
            for (&j, &d) in op.inputs.iter().zip(&op.needs_dx) {
                touch(&mut act[j], bw(k));
                if d {
                    touch(&mut grad[j], bw(k));
                }
            }
        }
    }
    touch(&mut act[output], k_end);
    if train {
        touch(&mut grad[output], k_end);
    }
    let end = 4 * ops.len() + 1;
    if let Some(keep) = keep {
        touch(&mut act[keep], end);
    }
    for &j in wrt {
        touch(&mut act[j], end);
        touch(&mut grad[j], end);
    }
    // The input (node 0) has a buffer of its own (the whole batch), never a slot; its
    // gradient has one only when asked for.
    act[0] = None;
    if !wrt.contains(&0) {
        grad[0] = None;
    }
    let pool = |lives: &mut [Option<(usize, usize)>], segment: &[Option<usize>]| {
        let own: Vec<(usize, usize)> =
            (0..n).filter(|&i| lives[i].is_some()).filter_map(|i| Some((i, segment[i]?))).collect();
        own.iter().for_each(|&(i, _)| lives[i] = None);
        let mut slots = assign(lives, len);
        let first = slots.len.len();
        let mut taken: Vec<usize> = Vec::new();
        for (i, seg) in own {
            taken.resize(taken.len().max(seg + 1), 0);
            let s = first + taken[seg];
            taken[seg] += 1;
            if s == slots.len.len() {
                slots.len.push(0);
                slots.part.push(true);
            }
            slots.len[s] = slots.len[s].max(len[i]);
            slots.of[i] = Some(s);
        }
        slots
    };
    (pool(&mut act, &local.acts), pool(&mut grad, &local.grads))
}

/// First-fit interval assignment: a slot is reused by a value whose life starts after the
/// slot's last value's ends.
fn assign(lives: &[Option<(usize, usize)>], len: &[usize]) -> Slots {
    let mut order: Vec<usize> = (0..lives.len()).filter(|&i| lives[i].is_some()).collect();
    order.sort_by_key(|&i| lives[i].map(|(a, _)| a));
    let mut slots = Slots { of: vec![None; lives.len()], len: Vec::new(), part: Vec::new() };
    let mut free_at: Vec<usize> = Vec::new();
    for i in order {
        let (start, end) = lives[i].expect("filtered");
        let s = match free_at.iter().position(|&f| f < start) {
            Some(s) => s,
            None => {
                free_at.push(0);
                slots.len.push(0);
                slots.part.push(false);
                free_at.len() - 1
            }
        };
        free_at[s] = end;
        slots.len[s] = slots.len[s].max(len[i]);
        slots.of[i] = Some(s);
    }
    slots
}
