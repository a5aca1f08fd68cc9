//! Endpoint, stage, stage resource and API Gateway statuses, spelled as the guide does.

use serde::{Deserialize, Serialize};

use crate::status::status_enum;

status_enum!(
    /// Endpoint lifecycle (derived from its stages, see [`super::derive`]).
    EndpointStatus {
        CreateRequested => "CREATE REQUESTED",
        CreateInProgress => "CREATE IN PROGRESS",
        UpdateInProgress => "UPDATE IN PROGRESS",
        DeleteInProgress => "DELETE IN PROGRESS",
        Active => "ACTIVE",
        CreateFailed => "CREATE FAILED",
        UpdateFailed => "UPDATE FAILED",
    }
);

status_enum!(
    /// Stage lifecycle (derived from its instances and resources).
    StageStatus {
        CreateRequested => "CREATE REQUESTED",
        CreateInProgress => "CREATE IN PROGRESS",
        DeployInProgress => "DEPLOY IN PROGRESS",
        DeleteInProgress => "DELETE IN PROGRESS",
        Active => "ACTIVE",
        CreateFailed => "CREATE FAILED",
        DeployFailed => "DEPLOY FAILED",
    }
);

status_enum!(
    /// Stage resource lifecycle (derived from its pods).
    StageResourceStatus {
        CreateRequested => "CREATE REQUESTED",
        CreateInProgress => "CREATE IN PROGRESS",
        DeleteInProgress => "DELETE IN PROGRESS",
        Active => "ACTIVE",
        CreateFailed => "CREATE FAILED",
    }
);

status_enum!(
    /// The gateways' state of one stage (the guide's "API Gateway 상태").
    GatewayStatus {
        CreateInProgress => "CREATE IN PROGRESS",
        StageDeploying => "STAGE DEPLOYING",
        Active => "ACTIVE",
        NotFoundStage => "NOT FOUND: STAGE",
        NotFoundStageDeployResult => "NOT FOUND: STAGE DEPLOY RESULT",
        StageDeployFail => "STAGE DEPLOY FAIL",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_its_guide_spelling() {
        for s in EndpointStatus::ALL {
            assert_eq!(EndpointStatus::parse(s.as_str()), Some(*s));
        }
        for s in StageStatus::ALL {
            assert_eq!(StageStatus::parse(s.as_str()), Some(*s));
        }
        for s in StageResourceStatus::ALL {
            assert_eq!(StageResourceStatus::parse(s.as_str()), Some(*s));
        }
        for s in GatewayStatus::ALL {
            assert_eq!(GatewayStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(GatewayStatus::NotFoundStageDeployResult.as_str(), "NOT FOUND: STAGE DEPLOY RESULT");
        assert_eq!(StageStatus::parse("deploy_failed"), Some(StageStatus::DeployFailed));
    }
}
