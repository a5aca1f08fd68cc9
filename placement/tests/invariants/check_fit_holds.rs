//! Committing the plan one workload at a time, as the scheduler does, every placement
//! passes `check_fit` against the state left by the ones before it; and the state the
//! solver ends with is exactly that committed state, so an unplaced gang leaves nothing
//! behind.

use gantry_placement::{Solver, apply, check_fit};
use proptest::prelude::*;

use crate::strategy::problem;

proptest! {
    #[test]
    fn each_placement_fits_the_state_before_it(problem in problem()) {
        let mut solver = Solver::new(&problem.nodes);
        let mut nodes = problem.nodes.clone();
        for demand in &problem.pending {
            if let Ok(placement) = solver.place(demand) {
                prop_assert_eq!(check_fit(&nodes, demand, &placement), Ok(()), "{}", demand.id);
                apply(&mut nodes, demand, &placement);
            }
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        prop_assert_eq!(solver.nodes().len(), nodes.len());
        for (after, committed) in solver.nodes().iter().zip(&nodes) {
            prop_assert_eq!(&after.id, &committed.id);
            prop_assert_eq!(after.free, committed.free, "{}", after.id);
            let mut left: Vec<_> = after.free_gpus.iter().map(|g| &g.uuid).collect();
            let mut expected: Vec<_> = committed.free_gpus.iter().map(|g| &g.uuid).collect();
            left.sort();
            expected.sort();
            prop_assert_eq!(left, expected, "{}", after.id);
        }
    }
}
