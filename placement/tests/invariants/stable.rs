//! Re-solving a solution changes nothing: once the plan is applied, the workloads it
//! left unplaced still fit nowhere.

use gantry_placement::{Problem, apply, solve};
use proptest::prelude::*;

use crate::strategy::{demand_by_id, problem};

proptest! {
    #[test]
    fn re_solving_places_nothing_more(problem in problem()) {
        let solution = solve(&problem);
        let mut nodes = problem.nodes.clone();
        for (id, placement) in &solution.placed {
            apply(&mut nodes, demand_by_id(&problem, id), placement);
        }
        let pending = solution.unplaced.iter().map(|(id, _)| demand_by_id(&problem, id).clone()).collect();
        let again = solve(&Problem { nodes, pending });
        prop_assert!(again.placed.is_empty(), "re-solve placed {:?}", again.placed);
    }
}
