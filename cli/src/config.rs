//! Client settings from three sources, highest precedence first:
//!
//! ```text
//!   flags (--server, --token, --ca-cert, --project, --timeout)
//!     > environment (GANTRY_SERVERS, GANTRY_TOKEN, GANTRY_CA_CERT, GANTRY_PROJECT)
//!       > client config file ($GANTRY_CONFIG, else $XDG_CONFIG_HOME/gantry/client.toml,
//!         else ~/.config/gantry/client.toml: where the scheduler writes it)
//! ```
//!
//! The file is what the scheduler writes on its first start in dev mode:
//!
//! ```toml
//! servers = ["https://127.0.0.1:7443"]
//! token = "gantry_..."
//! ca_cert = "/root/.local/share/gantry/pki/ca.pem"
//! project = "default"
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::cli::GlobalArgs;
use crate::toml_file;

/// Project used when no flag, variable or file names one.
pub const DEFAULT_PROJECT: &str = "default";

/// The config file under `$XDG_CONFIG_HOME` (default `~/.config`): the path the
/// scheduler writes on its first start.
const DEFAULT_FILE: &str = "gantry/client.toml";

/// Reads an environment variable. Passed in rather than read from the process so tests
/// can give each case its own environment (setting process variables is `unsafe` in
/// edition 2024 and races between tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The client config file. Every key is optional.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub servers: Option<Vec<String>>,
    pub token: Option<String>,
    /// Relative paths are relative to the config file's directory.
    pub ca_cert: Option<PathBuf>,
    pub project: Option<String>,
}

/// Resolved client settings. Built only by [`Config::load`] / [`Config::resolve`], so
/// `servers` is never empty and `project` never blank.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Server URLs in the order to try them.
    pub servers: Vec<String>,
    pub token: Option<String>,
    pub ca_cert: Option<PathBuf>,
    pub project: String,
    pub timeout: Duration,
}

impl Config {
    /// Reads the config file (if any) and merges it with `env` and the flags.
    ///
    /// The default file may be missing; a file named by `--config` or `GANTRY_CONFIG`
    /// must exist, since asking for a file that is not there is a mistake worth reporting.
    pub fn load(flags: &GlobalArgs, env: Env<'_>) -> anyhow::Result<Config> {
        let explicit = flags.config.clone().or_else(|| var(env, "GANTRY_CONFIG").map(PathBuf::from));
        let path = explicit.clone().or_else(|| default_path(env));
        let file = match &path {
            Some(path) => match read_file(path)? {
                Some(file) => Some((path.as_path(), file)),
                None if explicit.is_some() => bail!("config file {} does not exist", path.display()),
                None => None,
            },
            None => None,
        };
        Self::resolve(flags, env, file)
    }

    /// Merges the three sources; `file` is the parsed config file and where it was read.
    pub fn resolve(flags: &GlobalArgs, env: Env<'_>, file: Option<(&Path, FileConfig)>) -> anyhow::Result<Config> {
        let (file_path, file) = match file {
            Some((path, file)) => (Some(path), file),
            None => (None, FileConfig::default()),
        };
        let file_dir = file_path.and_then(Path::parent).unwrap_or(Path::new(""));

        let servers = if !flags.servers.is_empty() {
            flags.servers.clone()
        } else if let Some(list) = var(env, "GANTRY_SERVERS") {
            list.split(',').map(str::to_string).collect()
        } else {
            file.servers.unwrap_or_default()
        };
        let servers: Vec<String> = servers.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if servers.is_empty() {
            let file_hint = match file_path {
                Some(p) => format!("`servers` in {}", p.display()),
                None => "`servers` in the client config file".to_string(),
            };
            bail!("no server configured: pass --server, set GANTRY_SERVERS or {file_hint}");
        }

        let project = flags
            .project
            .clone()
            .or_else(|| var(env, "GANTRY_PROJECT"))
            .or(file.project)
            .unwrap_or_else(|| DEFAULT_PROJECT.to_string());
        if project.trim().is_empty() {
            bail!("the project name must not be empty");
        }

        Ok(Config {
            servers,
            token: flags.token.clone().or_else(|| var(env, "GANTRY_TOKEN")).or(file.token),
            ca_cert: flags
                .ca_cert
                .clone()
                .or_else(|| var(env, "GANTRY_CA_CERT").map(PathBuf::from))
                .or_else(|| file.ca_cert.map(|p| file_dir.join(p))),
            project,
            timeout: flags.timeout,
        })
    }
}

/// `$XDG_CONFIG_HOME/gantry/client.toml`, else `$HOME/.config/gantry/client.toml`; the
/// scheduler's bootstrap resolves the same way.
fn default_path(env: Env<'_>) -> Option<PathBuf> {
    let config_home = var(env, "XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var(env, "HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(config_home.join(DEFAULT_FILE))
}

/// An empty variable counts as unset, so `GANTRY_TOKEN= gantryctl ...` falls back to the
/// file instead of sending an empty token.
fn var(env: Env<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.is_empty())
}

/// `Ok(None)` when the file does not exist; every other failure names the file.
fn read_file(path: &Path) -> anyhow::Result<Option<FileConfig>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading config file {}", path.display())),
    };
    let file = toml_file::parse(path, &text).context("malformed config file")?;
    Ok(Some(file))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    fn flags(args: &[&str]) -> GlobalArgs {
        let mut argv = vec!["gantryctl"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["cluster", "status"]);
        Cli::try_parse_from(argv).unwrap().global
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn file() -> FileConfig {
        FileConfig {
            servers: Some(vec!["https://file:7443".into()]),
            token: Some("file-token".into()),
            ca_cert: Some("/file/ca.pem".into()),
            project: Some("file-project".into()),
        }
    }

    const ALL_ENV: &[(&str, &str)] = &[
        ("GANTRY_SERVERS", "https://env1:7443,https://env2:7443"),
        ("GANTRY_TOKEN", "env-token"),
        ("GANTRY_CA_CERT", "/env/ca.pem"),
        ("GANTRY_PROJECT", "env-project"),
    ];

    #[test]
    fn file_values_apply_when_nothing_overrides_them() {
        let c = Config::resolve(&flags(&[]), &env(&[]), Some((Path::new("/cfg/client.toml"), file()))).unwrap();
        assert_eq!(c.servers, ["https://file:7443"]);
        assert_eq!(c.token.as_deref(), Some("file-token"));
        assert_eq!(c.ca_cert, Some(PathBuf::from("/file/ca.pem")));
        assert_eq!(c.project, "file-project");
    }

    #[test]
    fn env_overrides_file() {
        let c = Config::resolve(&flags(&[]), &env(ALL_ENV), Some((Path::new("/cfg/client.toml"), file()))).unwrap();
        assert_eq!(c.servers, ["https://env1:7443", "https://env2:7443"]);
        assert_eq!(c.token.as_deref(), Some("env-token"));
        assert_eq!(c.ca_cert, Some(PathBuf::from("/env/ca.pem")));
        assert_eq!(c.project, "env-project");
    }

    #[test]
    fn flags_override_env_and_file() {
        let f = flags(&[
            "--server",
            "https://flag1:1",
            "--server",
            "https://flag2:2,https://flag3:3",
            "--token",
            "flag-token",
            "--ca-cert",
            "/flag/ca.pem",
            "-p",
            "flag-project",
            "--timeout",
            "3s",
        ]);
        let c = Config::resolve(&f, &env(ALL_ENV), Some((Path::new("/cfg/client.toml"), file()))).unwrap();
        assert_eq!(c.servers, ["https://flag1:1", "https://flag2:2", "https://flag3:3"]);
        assert_eq!(c.token.as_deref(), Some("flag-token"));
        assert_eq!(c.ca_cert, Some(PathBuf::from("/flag/ca.pem")));
        assert_eq!(c.project, "flag-project");
        assert_eq!(c.timeout, Duration::from_secs(3));
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let e = env(&[("GANTRY_TOKEN", ""), ("GANTRY_SERVERS", "")]);
        let c = Config::resolve(&flags(&[]), &e, Some((Path::new("/cfg/client.toml"), file()))).unwrap();
        assert_eq!(c.token.as_deref(), Some("file-token"));
        assert_eq!(c.servers, ["https://file:7443"]);
    }

    #[test]
    fn defaults_and_missing_servers() {
        let c = Config::resolve(&flags(&["--server", "http://x:1"]), &env(&[]), None).unwrap();
        assert_eq!(c.project, DEFAULT_PROJECT);
        assert_eq!(c.token, None);
        let err = Config::resolve(&flags(&[]), &env(&[]), None).unwrap_err().to_string();
        assert!(err.contains("no server configured"), "{err}");
    }

    #[test]
    fn relative_ca_cert_in_file_is_relative_to_the_file() {
        let f = FileConfig { ca_cert: Some("pki/ca.pem".into()), ..file() };
        let c = Config::resolve(&flags(&[]), &env(&[]), Some((Path::new("/cfg/client.toml"), f))).unwrap();
        assert_eq!(c.ca_cert, Some(PathBuf::from("/cfg/pki/ca.pem")));
    }

    #[test]
    fn load_reads_the_file_named_by_gantry_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "servers = [\"https://127.0.0.1:7443\"]\ntoken = \"gantry_x\"\n").unwrap();
        let e = env(&[("GANTRY_CONFIG", path.to_str().unwrap())]);
        let c = Config::load(&flags(&[]), &e).unwrap();
        assert_eq!(c.servers, ["https://127.0.0.1:7443"]);
        assert_eq!(c.token.as_deref(), Some("gantry_x"));
    }

    #[test]
    fn missing_default_file_is_fine_but_missing_explicit_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let home = env(&[("HOME", dir.path().to_str().unwrap())]);
        let c = Config::load(&flags(&["--server", "https://a:1"]), &home).unwrap();
        assert_eq!(c.servers, ["https://a:1"]);

        let missing = dir.path().join("nope.toml");
        let err = Config::load(&flags(&["--server", "https://a:1", "--config", missing.to_str().unwrap()]), &home)
            .unwrap_err();
        assert!(err.to_string().contains("nope.toml"), "{err}");
    }

    #[test]
    fn default_file_lives_under_xdg_config_home_or_home() {
        let dir = tempfile::tempdir().unwrap();
        let under_home = dir.path().join("home/.config").join(DEFAULT_FILE);
        let under_xdg = dir.path().join("xdg").join(DEFAULT_FILE);
        for (path, project) in [(&under_home, "p-home"), (&under_xdg, "p-xdg")] {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, format!("project = \"{project}\"\nservers = [\"https://h:1\"]\n")).unwrap();
        }
        let home = dir.path().join("home");
        let xdg = dir.path().join("xdg");
        let c = Config::load(&flags(&[]), &env(&[("HOME", home.to_str().unwrap())])).unwrap();
        assert_eq!(c.project, "p-home");
        let both = env(&[("HOME", home.to_str().unwrap()), ("XDG_CONFIG_HOME", xdg.to_str().unwrap())]);
        assert_eq!(Config::load(&flags(&[]), &both).unwrap().project, "p-xdg");
    }

    #[test]
    fn malformed_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.toml");
        std::fs::write(&path, "servers = [\"https://a:1\"]\nsevrers = 1\n").unwrap();
        let err = Config::load(&flags(&["--config", path.to_str().unwrap()]), &env(&[])).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("client.toml:2") && text.contains("unknown field `sevrers`"), "{text}");
    }
}
