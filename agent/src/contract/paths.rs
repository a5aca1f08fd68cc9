//! Fixed directories inside every training container. The agent bind-mounts host
//! directories onto them; scripts learn them through the `EM_*` variables.

pub const SOURCE_DIR: &str = "/gantry/source";
/// Each dataset at `{DATASETS_DIR}/{name}`.
pub const DATASETS_DIR: &str = "/gantry/datasets";
pub const MODEL_DIR: &str = "/gantry/model";
pub const CHECKPOINT_INPUT_DIR: &str = "/gantry/checkpoints/input";
pub const CHECKPOINT_OUTPUT_DIR: &str = "/gantry/checkpoints/output";
pub const TENSORBOARD_DIR: &str = "/gantry/tensorboard";
/// Wheels for `requirements.txt`, downloaded by the agent on the host.
pub const WHEELS_DIR: &str = "/gantry/wheels";

/// Where the launcher installs `requirements.txt` (`pip install --target`): a
/// writable work directory of the node, on `PYTHONPATH`.
pub const PACKAGES_DIR: &str = "/gantry/packages";
/// `HOME`: a tmpfs owned by the training's user (the root filesystem is read-only).
pub const HOME_DIR: &str = "/gantry/home";
/// Scratch space: a tmpfs.
pub const TMP_DIR: &str = "/tmp";

pub fn dataset_dir(name: &str) -> String {
    format!("{DATASETS_DIR}/{name}")
}
