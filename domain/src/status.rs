//! Status names exactly as the guide spells them, and the transitions allowed between
//! them. Pure: the state machine asks these functions before changing any status.

use serde::{Deserialize, Serialize};

macro_rules! status_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The guide's spelling, e.g. `CREATE IN PROGRESS`.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                let wanted = s.trim().replace('_', " ").to_ascii_uppercase();
                Self::ALL.iter().copied().find(|v| v.as_str() == wanted)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

// Shared with the other status families (e.g. `endpoint::status`).
pub(crate) use status_enum;

status_enum!(
    /// Experiment lifecycle.
    ExperimentStatus {
        CreateRequested => "CREATE REQUESTED",
        CreateInProgress => "CREATE IN PROGRESS",
        CreateFailed => "CREATE FAILED",
        Active => "ACTIVE",
    }
);

status_enum!(
    /// Training lifecycle.
    TrainingStatus {
        CreateRequested => "CREATE REQUESTED",
        CreateInProgress => "CREATE IN PROGRESS",
        Running => "RUNNING",
        Stopped => "STOPPED",
        Complete => "COMPLETE",
        StopInProgress => "STOP IN PROGRESS",
        FailTrain => "FAIL TRAIN",
        CreateFailed => "CREATE FAILED",
        FailTrainInProgress => "FAIL TRAIN IN PROGRESS",
        CompleteInProgress => "COMPLETE IN PROGRESS",
    }
);

impl TrainingStatus {
    /// Final states: nothing runs and nothing will.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Stopped | Self::Complete | Self::FailTrain | Self::CreateFailed)
    }

    /// States in which the training holds (or is about to hold) node resources.
    pub fn holds_resources(&self) -> bool {
        matches!(
            self,
            Self::CreateInProgress
                | Self::Running
                | Self::StopInProgress
                | Self::FailTrainInProgress
                | Self::CompleteInProgress
        )
    }

    /// Whether a training may move from `self` to `to`.
    ///
    /// ```text
    /// CREATE REQUESTED -> CREATE IN PROGRESS -> RUNNING -> COMPLETE IN PROGRESS -> COMPLETE
    ///        |                   |                |  \--> FAIL TRAIN IN PROGRESS -> FAIL TRAIN
    ///        |                   +--> CREATE FAILED
    ///        +--(stop)--> STOP IN PROGRESS -> STOPPED      (stop is allowed from any live state)
    /// ```
    pub fn can_transition(&self, to: TrainingStatus) -> bool {
        use TrainingStatus::*;
        if self.is_terminal() {
            return false;
        }
        matches!(
            (*self, to),
            (CreateRequested, CreateInProgress | CreateFailed | StopInProgress | FailTrain)
                | (CreateInProgress, Running | CreateFailed | StopInProgress | FailTrainInProgress | FailTrain)
                | (Running, CompleteInProgress | FailTrainInProgress | StopInProgress | FailTrain)
                | (CompleteInProgress, Complete | FailTrainInProgress | FailTrain)
                | (FailTrainInProgress, FailTrain)
                | (StopInProgress, Stopped)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TrainingStatus::ALL {
            assert_eq!(TrainingStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(TrainingStatus::parse("fail_train"), Some(TrainingStatus::FailTrain));
    }

    #[test]
    fn terminal_states_never_move() {
        for from in TrainingStatus::ALL.iter().filter(|s| s.is_terminal()) {
            for to in TrainingStatus::ALL {
                assert!(!from.can_transition(*to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn the_happy_path_is_allowed() {
        use TrainingStatus::*;
        let path = [CreateRequested, CreateInProgress, Running, CompleteInProgress, Complete];
        for w in path.windows(2) {
            assert!(w[0].can_transition(w[1]), "{} -> {}", w[0], w[1]);
        }
    }
}
