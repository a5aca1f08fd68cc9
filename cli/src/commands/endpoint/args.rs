//! Flags shared by endpoint and stage creation: the stage form and its resources.

use clap::Args;
use gantry_proto::v1::{StageResourceSpec, StageSpec};

use crate::parse::{self, Pair};

#[derive(Debug, Args)]
pub struct CreateArgs {
    pub name: String,
    /// Free text (at most 255 characters)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub description: String,
    /// A KEY=VALUE tag; repeat for more (at most 10)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub tags: Vec<Pair>,
    #[command(flatten)]
    pub stage: StageArgs,
}

/// The stage form (the default stage of a new endpoint, or a new stage).
#[derive(Debug, Args)]
pub struct StageArgs {
    /// Stage name (a new endpoint's default stage is "default" unless given)
    #[arg(long = "stage", value_name = "NAME")]
    pub stage_name: Option<String>,
    /// Stage description
    #[arg(long = "stage-description", value_name = "TEXT", default_value = "")]
    pub stage_description: String,
    /// Instance type of the nodes the stage reserves
    #[arg(long, value_name = "NAME")]
    pub instance_type: String,
    /// Number of instances (nodes) the stage reserves; its pods spread over them
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub instance_count: u32,
    /// A stage resource: model=NAME,path=/inference[,pods=N][,description=TEXT]; repeat for more
    #[arg(long = "resource", value_name = "SPEC", value_parser = resource, required = true)]
    pub resources: Vec<StageResourceSpec>,
}

impl StageArgs {
    pub fn spec(&self, default_name: &str) -> StageSpec {
        StageSpec {
            name: self.stage_name.clone().unwrap_or_else(|| default_name.to_string()),
            description: self.stage_description.clone(),
            instance_type: self.instance_type.clone(),
            instance_count: self.instance_count,
            resources: self.resources.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub name: String,
    #[arg(long, value_name = "NAME")]
    pub new_name: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Replace all tags with these (KEY=VALUE, repeatable)
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse::pair)]
    pub tags: Vec<Pair>,
    /// Remove every tag
    #[arg(long, conflicts_with = "tags")]
    pub clear_tags: bool,
}

/// `model=iris,path=/inference,pods=2,description=…`: `description` goes last since it
/// may contain commas.
pub fn resource(s: &str) -> Result<StageResourceSpec, String> {
    let mut spec = StageResourceSpec { pod_count: 1, ..Default::default() };
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or_else(|| format!("expected KEY=VALUE in '{rest}'"))?;
        if key == "description" {
            spec.description = after.to_string();
            break;
        }
        let (value, next) = after.split_once(',').unwrap_or((after, ""));
        match key {
            "model" => spec.model = value.to_string(),
            "path" => spec.resource_path = value.to_string(),
            "pods" => {
                spec.pod_count = value.parse().map_err(|_| format!("pods must be a whole number, got '{value}'"))?
            }
            other => return Err(format!("unknown key '{other}': use model, path, pods or description")),
        }
        rest = next;
    }
    if spec.model.is_empty() || spec.resource_path.is_empty() {
        return Err(format!("'{s}' needs model=NAME and path=/PATH"));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_parse_with_defaults_and_a_free_description() {
        let r = resource("model=iris,path=/inference").unwrap();
        assert_eq!((r.model.as_str(), r.resource_path.as_str(), r.pod_count), ("iris", "/inference", 1));
        let r = resource("path=/p,model=m,pods=3,description=a, b=c").unwrap();
        assert_eq!((r.pod_count, r.description.as_str()), (3, "a, b=c"));
    }

    #[test]
    fn bad_resources_say_what_is_wrong() {
        assert!(resource("model=iris").unwrap_err().contains("path=/PATH"));
        assert!(resource("model=m,path=/p,pods=two").unwrap_err().contains("whole number"));
        assert!(resource("model=m,path=/p,gpu=1").unwrap_err().contains("unknown key 'gpu'"));
        assert!(resource("iris").unwrap_err().contains("KEY=VALUE"));
    }
}
