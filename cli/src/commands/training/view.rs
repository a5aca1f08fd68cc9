//! Trainings for people: the list's one line each, and `get`'s full record.

use gantry_proto::v1::Training;

use crate::commands::experiment::tags_text;
use crate::output::format::{elapsed, minutes, timestamp, yes_no};
use crate::output::table::{Table, fields, truncate};

/// Longest status reason shown in the list before it is cut (`get` shows all of it).
const REASON_WIDTH: usize = 50;

pub fn name(t: &Training) -> &str {
    t.spec.as_ref().map_or("", |s| s.name.as_str())
}

pub fn list(trainings: &[Training]) -> String {
    let mut table = Table::new(["NAME", "STATUS", "EXPERIMENT", "INSTANCES", "ELAPSED", "REASON"]);
    for t in trainings {
        let spec = t.spec.clone().unwrap_or_default();
        table.row([
            spec.name,
            t.status.clone(),
            spec.experiment,
            format!("{} x{}", spec.instance_type, spec.instance_count),
            elapsed(t.elapsed_ms),
            truncate(&t.status_reason, REASON_WIDTH),
        ]);
    }
    table.render()
}

/// Every field, then sections for the lists: hyperparameters, datasets, assignments
/// (rank → node and GPUs) and the status history.
pub fn detail(t: &Training) -> String {
    let s = t.spec.clone().unwrap_or_default();
    let data_storage =
        if s.data_storage_size_gb == 0 { String::new() } else { format!("{} GB", s.data_storage_size_gb) };
    let mut out = fields(&[
        ("Name", s.name.clone()),
        ("ID", t.id.clone()),
        ("Project", t.project.clone()),
        ("Experiment", format!("{} ({})", s.experiment, t.experiment_id)),
        ("Status", t.status.clone()),
        ("Reason", t.status_reason.clone()),
        ("Description", s.description.clone()),
        ("Tags", tags_text(&s.tags)),
        ("Created", timestamp(t.created_at_ms)),
        ("Updated", timestamp(t.updated_at_ms)),
        ("Started", timestamp(t.started_at_ms)),
        ("Ended", timestamp(t.ended_at_ms)),
        ("Elapsed", elapsed(t.elapsed_ms)),
        ("Algorithm path", s.algorithm_path.clone()),
        ("Entry point", s.entry_point.clone()),
        ("Image", s.image.clone()),
        ("Instance type", s.instance_type.clone()),
        ("Instance count", s.instance_count.to_string()),
        ("Processes per node", s.nproc_per_node.to_string()),
        ("Use torchrun", yes_no(s.use_torchrun)),
        ("Checkpoint input", s.checkpoint_input_path.clone()),
        ("Output path", s.output_path.clone()),
        ("Checkpoint output", s.checkpoint_output_path.clone()),
        ("Data storage", data_storage),
        ("Max time", minutes(s.timeout_minutes)),
        ("Logs", yes_no(s.use_log)),
    ]);
    if !s.hyperparameters.is_empty() {
        let mut table = Table::new(["HYPERPARAMETER", "VALUE"]);
        for hp in &s.hyperparameters {
            table.row([hp.key.clone(), hp.value.clone()]);
        }
        section(&mut out, &table);
    }
    if !s.datasets.is_empty() {
        let mut table = Table::new(["DATASET", "PATH"]);
        for ds in &s.datasets {
            table.row([ds.name.clone(), ds.path.clone()]);
        }
        section(&mut out, &table);
    }
    if !t.assignments.is_empty() {
        let mut table = Table::new(["RANK", "NODE", "GPUS"]);
        for a in &t.assignments {
            table.row([a.rank.to_string(), a.node_id.clone(), a.gpu_uuids.join(",")]);
        }
        section(&mut out, &table);
    }
    let mut history = Table::new(["TIME", "STATUS", "REASON"]);
    for h in &t.history {
        history.row([timestamp(h.at_ms), h.status.clone(), h.reason.clone()]);
    }
    section(&mut out, &history);
    out
}

fn section(out: &mut String, table: &Table) {
    out.push('\n');
    out.push_str(&table.render());
}

#[cfg(test)]
mod tests {
    use gantry_proto::v1::{Assignment, KeyValue, StatusChange, TrainingSpec};

    use super::*;

    fn training() -> Training {
        Training {
            id: "t-1".into(),
            project: "default".into(),
            spec: Some(TrainingSpec {
                name: "mnist".into(),
                experiment: "digits".into(),
                algorithm_path: "file:///algo".into(),
                entry_point: "train.py".into(),
                hyperparameters: vec![KeyValue { key: "lr".into(), value: "0.1".into() }],
                image: "torch-gpu".into(),
                instance_type: "g1".into(),
                instance_count: 2,
                nproc_per_node: 1,
                output_path: "file:///out".into(),
                timeout_minutes: 120,
                use_log: true,
                ..Default::default()
            }),
            experiment_id: "exp-1".into(),
            status: "RUNNING".into(),
            status_reason: String::new(),
            assignments: vec![
                Assignment { rank: 0, node_id: "n1".into(), gpu_uuids: vec!["GPU-0".into()] },
                Assignment { rank: 1, node_id: "n2".into(), gpu_uuids: vec!["GPU-3".into()] },
            ],
            history: vec![
                StatusChange { status: "CREATE REQUESTED".into(), at_ms: 1_700_000_000_000, reason: String::new() },
                StatusChange { status: "RUNNING".into(), at_ms: 1_700_000_012_000, reason: String::new() },
            ],
            created_at_ms: 1_700_000_000_000,
            updated_at_ms: 1_700_000_012_000,
            started_at_ms: 1_700_000_012_000,
            ended_at_ms: 0,
            elapsed_ms: 192_000,
        }
    }

    #[test]
    fn list_shows_one_line_per_training() {
        let waiting = Training {
            spec: Some(TrainingSpec {
                name: "big".into(),
                experiment: "digits".into(),
                instance_type: "g8".into(),
                instance_count: 1,
                ..Default::default()
            }),
            status: "CREATE REQUESTED".into(),
            status_reason: "no node with 8 free A100-80GB GPUs; the largest has 4 free, waiting for resources".into(),
            ..Default::default()
        };
        assert_eq!(
            list(&[training(), waiting]),
            "\
NAME    STATUS             EXPERIMENT   INSTANCES   ELAPSED   REASON
mnist   RUNNING            digits       g1 x2       3m12s
big     CREATE REQUESTED   digits       g8 x1       0s        no node with 8 free A100-80GB GPUs; the largest h…
"
        );
    }

    #[test]
    fn detail_shows_form_placement_and_history() {
        let view = detail(&training());
        assert!(view.starts_with("Name:                mnist\n"), "{view}");
        assert!(view.contains("Experiment:          digits (exp-1)\n"), "{view}");
        assert!(view.contains("Ended:               -\n"), "{view}");
        assert!(view.contains("Elapsed:             3m12s\n"), "{view}");
        assert!(view.contains("Max time:            2h\n"), "{view}");
        assert!(view.contains("\nHYPERPARAMETER   VALUE\nlr               0.1\n"), "{view}");
        assert!(view.contains("\nRANK   NODE   GPUS\n0      n1     GPU-0\n1      n2     GPU-3\n"), "{view}");
        assert!(
            view.ends_with(
                "\
TIME                   STATUS             REASON
2023-11-14T22:13:20Z   CREATE REQUESTED
2023-11-14T22:13:32Z   RUNNING
"
            ),
            "{view}"
        );
    }
}
