//! The same problem gives the same plan, down to the GPU uuids and the reasons, and so
//! does the same cluster listed in another order.

use gantry_placement::{Problem, solve};
use proptest::prelude::*;

use crate::strategy::problem;

proptest! {
    #[test]
    fn same_problem_same_solution(problem in problem()) {
        prop_assert_eq!(solve(&problem), solve(&problem));
    }

    #[test]
    fn node_order_does_not_matter(problem in problem()) {
        let mut reversed = problem.nodes.clone();
        reversed.reverse();
        for node in &mut reversed {
            node.free_gpus.reverse();
        }
        let shuffled = Problem { nodes: reversed, pending: problem.pending.clone() };
        prop_assert_eq!(solve(&problem), solve(&shuffled));
    }
}
