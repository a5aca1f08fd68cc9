//! A workload is placed whole (every container, each with its GPU count) or is
//! unplaced with a reason; every pending workload is accounted for exactly once, in
//! queue order.

use gantry_placement::solve;
use proptest::prelude::*;

use crate::strategy::{demand_by_id, problem};

proptest! {
    #[test]
    fn gangs_are_all_or_none(problem in problem()) {
        let solution = solve(&problem);
        for (id, placement) in &solution.placed {
            let demand = demand_by_id(&problem, id);
            prop_assert_eq!(placement.assignments.len(), demand.count as usize);
            for assignment in &placement.assignments {
                prop_assert_eq!(assignment.gpu_uuids.len(), demand.per_container.gpus as usize);
            }
        }
        let mut placed = solution.placed.iter().map(|(id, _)| id).peekable();
        let mut unplaced = solution.unplaced.iter().map(|(id, _)| id).peekable();
        for demand in &problem.pending {
            let in_placed = placed.next_if(|id| **id == demand.id).is_some();
            let in_unplaced = unplaced.next_if(|id| **id == demand.id).is_some();
            prop_assert!(in_placed != in_unplaced, "{} must be in exactly one list", demand.id);
        }
        prop_assert!(placed.next().is_none() && unplaced.next().is_none());
    }
}
