//! Every GPU a container gets is of the model its workload asked for.

use gantry_placement::solve;
use proptest::prelude::*;

use crate::strategy::{demand_by_id, node_by_id, problem};

proptest! {
    #[test]
    fn gpus_are_of_the_demanded_model(problem in problem()) {
        let solution = solve(&problem);
        for (id, placement) in &solution.placed {
            let demand = demand_by_id(&problem, id);
            for assignment in &placement.assignments {
                let node = node_by_id(&problem.nodes, &assignment.node_id);
                for uuid in &assignment.gpu_uuids {
                    let gpu = node.free_gpus.iter().find(|g| &g.uuid == uuid);
                    prop_assert_eq!(gpu.map(|g| Some(g.model.as_str())), Some(demand.gpu_model.as_deref()));
                }
            }
        }
    }
}
