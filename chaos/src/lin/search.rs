//! The search itself: Wing & Gong's backtracking over a doubly linked list of call and
//! return events, with Lowe's cache of explored (linearized set, state) pairs.

use std::collections::HashSet;

use super::{Model, Operation};

/// What [`check`] concluded about one object's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order exists. `linearized` is the longest prefix the search could order
    /// (operation ids, in order); `blocked` the operation whose return came before any
    /// remaining operation could be ordered.
    NotLinearizable {
        linearized: Vec<u64>,
        blocked: u64,
    },
    /// The search gave up after `budget` steps (neither proven nor refuted).
    GaveUp {
        budget: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(n: usize) -> BitSet {
        BitSet(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

struct Event {
    op: usize,
    /// For a call: its return's node, if the operation returned.
    ret: Option<usize>,
    is_call: bool,
}

/// The event list. Nodes `0..events.len()` are events; `head` and `tail` are sentinels.
struct Events {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    head: usize,
}

impl Events {
    fn build<I, O>(ops: &[Operation<I, O>]) -> Events {
        // (time, calls first on ties: the permissive reading of equal timestamps, op).
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            order.push((op.call, true, i));
            if let Some(ret) = op.ret {
                order.push((ret.max(op.call), false, i));
            }
        }
        order.sort_by_key(|&(time, is_call, op)| (time, !is_call, op));
        let mut ret_node = vec![None; ops.len()];
        for (node, &(_, is_call, op)) in order.iter().enumerate() {
            if !is_call {
                ret_node[op] = Some(node);
            }
        }
        let events: Vec<Event> = order
            .iter()
            .map(|&(_, is_call, op)| Event { op, ret: if is_call { ret_node[op] } else { None }, is_call })
            .collect();
        let n = events.len();
        let (head, tail) = (n, n + 1);
        let mut next = vec![0; n + 2];
        let mut prev = vec![0; n + 2];
        // Node k sits between k - 1 (or head) and k + 1 (or tail).
        for (k, p) in prev.iter_mut().enumerate().take(n) {
            *p = if k == 0 { head } else { k - 1 };
        }
        for (k, x) in next.iter_mut().enumerate().take(n) {
            *x = if k + 1 == n { tail } else { k + 1 };
        }
        next[head] = if n == 0 { tail } else { 0 };
        prev[tail] = if n == 0 { head } else { n - 1 };
        Events { events, next, prev, head }
    }

    fn lift(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = n;
        self.prev[n] = p;
    }

    /// Undoes `lift(x)`; lifts must be undone in reverse order.
    fn unlift(&mut self, x: usize) {
        let (p, n) = (self.prev[x], self.next[x]);
        self.next[p] = x;
        self.prev[n] = x;
    }
}

/// Checks one object's history against `model`, exploring at most `budget` steps.
pub fn check<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], budget: usize) -> Verdict {
    let mut list = Events::build(ops);
    let mut returns_left = ops.iter().filter(|o| o.ret.is_some()).count();
    let mut state = model.init();
    let mut linearized = BitSet::new(ops.len());
    let mut explored: HashSet<(BitSet, M::State)> = HashSet::new();
    // (op, state before it, its call node)
    let mut stack: Vec<(usize, M::State, usize)> = Vec::new();
    let mut deepest: Vec<u64> = Vec::new();
    // The return that stopped the deepest order: the most telling operation to report.
    let mut blocked = ops.first().map_or(0, |o| o.id);
    let mut node = list.next[list.head];
    for _ in 0..budget {
        if returns_left == 0 {
            return Verdict::Linearizable;
        }
        let event = list.events.get(node);
        match event {
            Some(e) if e.is_call => {
                let op = e.op;
                let ret = e.ret;
                if let Some(next_state) = model.step(&state, &ops[op].input, ops[op].output.as_ref()) {
                    let mut with_op = linearized.clone();
                    with_op.set(op);
                    if explored.insert((with_op.clone(), next_state.clone())) {
                        stack.push((op, std::mem::replace(&mut state, next_state), node));
                        linearized = with_op;
                        list.lift(node);
                        if let Some(r) = ret {
                            list.lift(r);
                            returns_left -= 1;
                        }
                        if stack.len() > deepest.len() {
                            deepest = stack.iter().map(|&(o, _, _)| ops[o].id).collect();
                        }
                        node = list.next[list.head];
                        continue;
                    }
                }
                node = list.next[node];
            }
            // A return of an operation not yet ordered (or, defensively, the end of the
            // list): every order of the prefix so far fails; undo the last choice.
            _ => {
                if let Some(e) = event.filter(|_| stack.len() >= deepest.len()) {
                    blocked = ops[e.op].id;
                }
                let Some((op, before, call_node)) = stack.pop() else {
                    return Verdict::NotLinearizable { linearized: deepest, blocked };
                };
                if let Some(r) = list.events[call_node].ret {
                    list.unlift(r);
                    returns_left += 1;
                }
                list.unlift(call_node);
                linearized.clear(op);
                state = before;
                node = list.next[call_node];
            }
        }
    }
    if returns_left == 0 { Verdict::Linearizable } else { Verdict::GaveUp { budget } }
}
