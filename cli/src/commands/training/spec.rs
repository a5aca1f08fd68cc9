//! The training form: built from a spec file (`-f`), the command-line flags, or both.
//!
//! ```text
//!   spec.toml / spec.json ──▶ SpecFile ─┐
//!                                       ├─ build ──▶ TrainingSpec (wire) ──▶ CreateTraining
//!   --flags ──────────────▶ CreateArgs ─┘   (flags win; lists merge by key)
//! ```
//!
//! The file holds TrainingSpec fields by their proto names (`algorithm_path`,
//! `timeout_minutes`, `hyperparameters = [{ key = "lr", value = "0.1" }]`, ...). A flag
//! replaces the file's value; `--tag`, `--hp` and `--dataset` replace the entry with the
//! same key (name) and add the others, so one hyperparameter can be changed without
//! repeating the rest. Only syntax is checked here: the scheduler validates the form
//! and names the field it rejects.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use gantry_proto::v1::{Dataset, KeyValue, Tag, TrainingSpec};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::parse::{self, Pair};
use crate::{report, toml_file};

/// Containers per training when neither the file nor a flag says.
pub const DEFAULT_INSTANCE_COUNT: u32 = 1;
pub const DEFAULT_NPROC_PER_NODE: u32 = 1;
/// Maximum training time when neither the file nor a flag says: one day.
pub const DEFAULT_TIMEOUT_MINUTES: u32 = 24 * 60;

#[derive(Debug, Default, Args)]
pub struct CreateArgs {
    /// Training name (or `name` in the spec file)
    pub name: Option<String>,
    /// TOML or JSON file with the TrainingSpec fields by their proto names; flags given
    /// on the command line override its values
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Free text (at most 255 characters)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// A KEY=VALUE tag; repeat for more (at most 10)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub tags: Vec<Pair>,
    /// Experiment the training belongs to
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,
    /// Create the experiment if it does not exist
    #[arg(long)]
    pub create_experiment: bool,
    /// Directory of the algorithm: file:///..., nas://{NAS ID}:/... or obs://...
    #[arg(long, value_name = "PATH")]
    pub algorithm_path: Option<String>,
    /// Script to run, relative to the algorithm path
    #[arg(long, value_name = "FILE")]
    pub entry_point: Option<String>,
    /// Image name from the catalog
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Instance type name from the catalog
    #[arg(long, value_name = "NAME")]
    pub instance_type: Option<String>,
    /// Containers started together [default: 1]
    #[arg(long, value_name = "N")]
    pub instance_count: Option<u32>,
    /// Processes per container [default: 1]
    #[arg(long, value_name = "N")]
    pub nproc_per_node: Option<u32>,
    /// Start the entry point with torchrun
    #[arg(long)]
    pub use_torchrun: bool,
    /// A hyperparameter, passed as --KEY VALUE; repeat for more (at most 100)
    #[arg(long = "hp", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub hyperparameters: Vec<Pair>,
    /// An input dataset directory; repeat for more (at most 10)
    #[arg(long = "dataset", value_name = "NAME=PATH", value_parser = parse::pair)]
    pub datasets: Vec<Pair>,
    /// Checkpoint to start from
    #[arg(long, value_name = "PATH")]
    pub checkpoint_input: Option<String>,
    /// Where the training writes its results (`--output` is taken by the output format)
    #[arg(long, value_name = "PATH")]
    pub output_path: Option<String>,
    /// Where checkpoints are saved
    #[arg(long, value_name = "PATH")]
    pub checkpoint_output: Option<String>,
    /// Scratch storage in GB (multiples of 10; 0 = none)
    #[arg(long = "data-storage-gb", value_name = "GB")]
    pub data_storage_size_gb: Option<u32>,
    /// Maximum training time, e.g. 90m, 2h, 1h30m [default: 24h]
    #[arg(long, value_name = "DURATION", value_parser = parse::minutes)]
    pub max_time: Option<u32>,
    /// Do not collect the training's logs
    #[arg(long)]
    pub no_log: bool,
}

/// A spec file: the TrainingSpec fields by their proto names, each optional so flags can
/// supply the rest.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpecFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<Vec<KeyValueEntry>>,
    pub experiment: Option<String>,
    pub create_experiment: Option<bool>,
    pub algorithm_path: Option<String>,
    pub entry_point: Option<String>,
    pub hyperparameters: Option<Vec<KeyValueEntry>>,
    pub image: Option<String>,
    pub instance_type: Option<String>,
    pub instance_count: Option<u32>,
    pub nproc_per_node: Option<u32>,
    pub use_torchrun: Option<bool>,
    pub datasets: Option<Vec<DatasetEntry>>,
    pub checkpoint_input_path: Option<String>,
    pub output_path: Option<String>,
    pub checkpoint_output_path: Option<String>,
    pub data_storage_size_gb: Option<u32>,
    pub timeout_minutes: Option<u32>,
    pub use_log: Option<bool>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyValueEntry {
    pub key: String,
    pub value: Scalar,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetEntry {
    pub name: String,
    pub path: String,
}

/// A value the wire carries as a string. Numbers and booleans are accepted too, so
/// `{ key = "lr", value = 0.1 }` works in TOML without quoting.
#[derive(Debug, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

/// Reads a spec file, TOML or JSON by its extension.
pub fn load(path: &Path) -> anyhow::Result<SpecFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading spec file {}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("toml") => toml_file::parse(path, &text),
        Some("json") => serde_json::from_str(&text).with_context(|| format!("malformed spec file {}", path.display())),
        _ => bail!("spec file {} must end in .toml or .json", path.display()),
    }
}

/// Merges the file (if any) and the flags into the form to send. Fails with a usage
/// error listing every required value given neither way.
pub fn build(args: &CreateArgs, file: SpecFile) -> anyhow::Result<TrainingSpec> {
    let mut missing = Vec::new();
    let mut required =
        |flag: &'static str, file_key: &'static str, flag_value: &Option<String>, file_value: Option<String>| {
            flag_value.clone().or(file_value).unwrap_or_else(|| {
                missing.push((flag, file_key));
                String::new()
            })
        };
    let name = required("NAME", "name", &args.name, file.name);
    let experiment = required("--experiment", "experiment", &args.experiment, file.experiment);
    let algorithm_path = required("--algorithm-path", "algorithm_path", &args.algorithm_path, file.algorithm_path);
    let entry_point = required("--entry-point", "entry_point", &args.entry_point, file.entry_point);
    let image = required("--image", "image", &args.image, file.image);
    let instance_type = required("--instance-type", "instance_type", &args.instance_type, file.instance_type);
    let output_path = required("--output-path", "output_path", &args.output_path, file.output_path);
    if !missing.is_empty() {
        let flags: Vec<&str> = missing.iter().map(|(flag, _)| *flag).collect();
        let keys: Vec<String> = missing.iter().map(|(_, key)| format!("`{key}`")).collect();
        return Err(report::usage(format!(
            "training create is missing {}: give them as arguments, or as {} in a spec file (-f)",
            flags.join(", "),
            keys.join(", ")
        )));
    }

    let file_pairs = |entries: Option<Vec<KeyValueEntry>>| {
        entries.unwrap_or_default().into_iter().map(|e| Pair { key: e.key, value: e.value.0 }).collect::<Vec<_>>()
    };
    let tags = merge(file_pairs(file.tags), &args.tags);
    let hyperparameters = merge(file_pairs(file.hyperparameters), &args.hyperparameters);
    let file_datasets =
        file.datasets.unwrap_or_default().into_iter().map(|d| Pair { key: d.name, value: d.path }).collect();
    let datasets = merge(file_datasets, &args.datasets);

    Ok(TrainingSpec {
        name,
        description: args.description.clone().or(file.description).unwrap_or_default(),
        tags: tags.into_iter().map(|p| Tag { key: p.key, value: p.value }).collect(),
        experiment,
        // Boolean flags can only switch a setting on (or, for --no-log, off): a file's
        // `true` is kept unless the flag says otherwise.
        create_experiment: args.create_experiment || file.create_experiment.unwrap_or(false),
        algorithm_path,
        entry_point,
        hyperparameters: hyperparameters.into_iter().map(|p| KeyValue { key: p.key, value: p.value }).collect(),
        image,
        instance_type,
        instance_count: args.instance_count.or(file.instance_count).unwrap_or(DEFAULT_INSTANCE_COUNT),
        nproc_per_node: args.nproc_per_node.or(file.nproc_per_node).unwrap_or(DEFAULT_NPROC_PER_NODE),
        use_torchrun: args.use_torchrun || file.use_torchrun.unwrap_or(false),
        datasets: datasets.into_iter().map(|p| Dataset { name: p.key, path: p.value }).collect(),
        checkpoint_input_path: args.checkpoint_input.clone().or(file.checkpoint_input_path).unwrap_or_default(),
        output_path,
        checkpoint_output_path: args.checkpoint_output.clone().or(file.checkpoint_output_path).unwrap_or_default(),
        data_storage_size_gb: args.data_storage_size_gb.or(file.data_storage_size_gb).unwrap_or(0),
        timeout_minutes: args.max_time.or(file.timeout_minutes).unwrap_or(DEFAULT_TIMEOUT_MINUTES),
        use_log: !args.no_log && file.use_log.unwrap_or(true),
    })
}

/// `base` with each override replacing the entry of the same key in place, or appended.
fn merge(mut base: Vec<Pair>, overrides: &[Pair]) -> Vec<Pair> {
    for o in overrides {
        match base.iter_mut().find(|b| b.key == o.key) {
            Some(existing) => existing.value = o.value.clone(),
            None => base.push(o.clone()),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// Parses `training create` flags as the real command line would.
    fn args(argv: &[&str]) -> CreateArgs {
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: CreateArgs,
        }
        let mut full = vec!["create"];
        full.extend_from_slice(argv);
        Wrapper::try_parse_from(full).unwrap().args
    }

    const REQUIRED: &[&str] = &[
        "mnist",
        "--experiment",
        "exp",
        "--algorithm-path",
        "file:///algo",
        "--entry-point",
        "train.py",
        "--image",
        "python-cpu",
        "--instance-type",
        "m1",
        "--output-path",
        "file:///out",
    ];

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const SPEC_TOML: &str = r#"
name = "from-file"
experiment = "exp-file"
create_experiment = true
algorithm_path = "nas://nas1:/algo"
entry_point = "main.py"
image = "torch-gpu"
instance_type = "g1"
instance_count = 2
use_torchrun = true
output_path = "nas://nas1:/out"
timeout_minutes = 120
use_log = true
tags = [{ key = "team", value = "vision" }]
hyperparameters = [
  { key = "lr", value = 0.1 },
  { key = "epochs", value = 10 },
  { key = "model", value = "resnet" },
]
datasets = [{ name = "train", path = "nas://nas1:/data/train" }]
"#;

    #[test]
    fn flags_alone_fill_the_form_with_defaults() {
        let spec = build(&args(REQUIRED), SpecFile::default()).unwrap();
        assert_eq!(spec.name, "mnist");
        assert_eq!(spec.output_path, "file:///out");
        assert_eq!(spec.instance_count, 1);
        assert_eq!(spec.nproc_per_node, 1);
        assert_eq!(spec.timeout_minutes, DEFAULT_TIMEOUT_MINUTES);
        assert!(spec.use_log);
        assert!(!spec.use_torchrun && !spec.create_experiment);
    }

    #[test]
    fn every_flag_reaches_the_form() {
        let mut argv = REQUIRED.to_vec();
        argv.extend_from_slice(&[
            "--create-experiment",
            "--instance-count",
            "4",
            "--nproc-per-node",
            "8",
            "--use-torchrun",
            "--hp",
            "lr=0.01",
            "--hp",
            "epochs=3",
            "--dataset",
            "train=nas://nas1:/train",
            "--checkpoint-input",
            "file:///ckpt-in",
            "--checkpoint-output",
            "file:///ckpt-out",
            "--data-storage-gb",
            "100",
            "--max-time",
            "1h30m",
            "--no-log",
            "--tag",
            "team=ml",
            "--description",
            "first try",
        ]);
        let spec = build(&args(&argv), SpecFile::default()).unwrap();
        assert!(spec.create_experiment && spec.use_torchrun && !spec.use_log);
        assert_eq!((spec.instance_count, spec.nproc_per_node), (4, 8));
        assert_eq!(
            spec.hyperparameters,
            [KeyValue { key: "lr".into(), value: "0.01".into() }, KeyValue { key: "epochs".into(), value: "3".into() }]
        );
        assert_eq!(spec.datasets, [Dataset { name: "train".into(), path: "nas://nas1:/train".into() }]);
        assert_eq!(spec.checkpoint_input_path, "file:///ckpt-in");
        assert_eq!(spec.checkpoint_output_path, "file:///ckpt-out");
        assert_eq!(spec.data_storage_size_gb, 100);
        assert_eq!(spec.timeout_minutes, 90);
        assert_eq!(spec.tags, [Tag { key: "team".into(), value: "ml".into() }]);
        assert_eq!(spec.description, "first try");
    }

    #[test]
    fn missing_required_values_are_one_usage_error() {
        let err = build(&args(&["mnist", "--image", "x"]), SpecFile::default()).unwrap_err();
        let usage = err.downcast_ref::<clap::Error>().expect("a usage error");
        assert_eq!(usage.exit_code(), 2);
        let text = usage.to_string();
        for flag in ["--experiment", "--algorithm-path", "--entry-point", "--instance-type", "--output-path"] {
            assert!(text.contains(flag), "{text}");
        }
        assert!(!text.contains("--image"), "{text}");
    }

    #[test]
    fn toml_file_alone_is_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "spec.toml", SPEC_TOML);
        let spec = build(&args(&[]), load(&path).unwrap()).unwrap();
        assert_eq!(spec.name, "from-file");
        assert_eq!(spec.instance_count, 2);
        assert!(spec.create_experiment && spec.use_torchrun && spec.use_log);
        assert_eq!(spec.timeout_minutes, 120);
        let hps: Vec<(&str, &str)> = spec.hyperparameters.iter().map(|h| (h.key.as_str(), h.value.as_str())).collect();
        assert_eq!(hps, [("lr", "0.1"), ("epochs", "10"), ("model", "resnet")]);
    }

    #[test]
    fn flags_override_file_values_and_merge_lists_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "spec.toml", SPEC_TOML);
        let argv = [
            "renamed",
            "--instance-count",
            "3",
            "--max-time",
            "30m",
            "--hp",
            "lr=0.5",
            "--hp",
            "seed=7",
            "--dataset",
            "train=nas://nas1:/other",
            "--no-log",
        ];
        let spec = build(&args(&argv), load(&path).unwrap()).unwrap();
        assert_eq!(spec.name, "renamed");
        assert_eq!(spec.experiment, "exp-file");
        assert_eq!(spec.instance_count, 3);
        assert_eq!(spec.timeout_minutes, 30);
        assert!(!spec.use_log);
        let hps: Vec<(&str, &str)> = spec.hyperparameters.iter().map(|h| (h.key.as_str(), h.value.as_str())).collect();
        assert_eq!(hps, [("lr", "0.5"), ("epochs", "10"), ("model", "resnet"), ("seed", "7")]);
        assert_eq!(spec.datasets, [Dataset { name: "train".into(), path: "nas://nas1:/other".into() }]);
    }

    #[test]
    fn json_files_use_the_same_field_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "spec.json",
            r#"{"name": "j", "experiment": "e", "algorithm_path": "file:///a", "entry_point": "t.py",
                "image": "i", "instance_type": "m1", "output_path": "file:///o",
                "hyperparameters": [{"key": "lr", "value": "0.1"}], "use_log": false}"#,
        );
        let spec = build(&args(&[]), load(&path).unwrap()).unwrap();
        assert_eq!(spec.name, "j");
        assert_eq!(spec.hyperparameters, [KeyValue { key: "lr".into(), value: "0.1".into() }]);
        assert!(!spec.use_log);
    }

    #[test]
    fn bad_files_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let typo = write(dir.path(), "spec.toml", "name = \"x\"\ntimeout = 5\n");
        let err = format!("{:#}", load(&typo).unwrap_err());
        assert!(err.contains("spec.toml:2") && err.contains("unknown field `timeout`"), "{err}");

        let json = write(dir.path(), "spec.json", "{\"name\": 1}");
        let err = format!("{:#}", load(&json).unwrap_err());
        assert!(err.contains("spec.json") && err.contains("invalid type"), "{err}");

        let yaml = write(dir.path(), "spec.yaml", "name: x");
        assert!(load(&yaml).unwrap_err().to_string().contains("must end in .toml or .json"));

        assert!(load(&dir.path().join("absent.toml")).unwrap_err().to_string().contains("absent.toml"));
    }
}
