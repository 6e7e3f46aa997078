//! The JSON API's runner: `GET /api/<command words>?<param>=<value>…` runs the same command as
//! `shoplens --format json <command words> --<param> <value>…` on the served workspace, so the API
//! takes the command line's parameters and answers its fields. Only read-only analyses of the
//! workspace are allowed: nothing that writes, and nothing that reads a file outside it.

use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, Parser};
use serde_json::{Map, Value, json};
use shoplens_engine::cluster::Engine;
use shoplens_server::{Api, ApiError, ApiErrorCode, Commands as _};

use crate::Cli;

/// The commands the API serves.
const ALLOWED: &[&[&str]] = &[
    &["tables"],
    &["kpis"],
    &["quarantine"],
    &["funnel"],
    &["paths"],
    &["activity"],
    &["repurchase"],
    &["cohorts"],
    &["lifecycle"],
    &["rfm"],
    &["clv"],
    &["churn"],
    &["stages"],
    &["products"],
    &["returns"],
    &["inventory"],
    &["channels"],
    &["campaigns"],
    &["basket"],
    &["recommend", "evaluate"],
    &["recommend", "user"],
    &["recommend", "item"],
    &["recommend", "tags"],
    &["recommend", "export"],
    &["experiment", "list"],
    &["experiment", "analyze"],
    &["experiment", "power"],
    &["audience", "fields"],
    &["audience", "list"],
    &["audience", "show"],
    &["audience", "exports"],
];

/// Global flags an API call may set (the workspace and format are the server's).
const GLOBAL_PARAMS: &[(&str, &str)] = &[("as_of", "--as-of"), ("lang", "--lang")];

/// Runs the CLI's commands for the API (the endpoints not typed yet).
#[derive(Debug)]
pub(crate) struct CliApi {
    pub(crate) commands: CliCommands,
}

/// The clap command of a word path (`["recommend", "user"]`).
fn subcommand(words: &[&str]) -> Option<clap::Command> {
    let mut c = Cli::command();
    c.build();
    for w in words {
        c = c.find_subcommand(w)?.clone();
    }
    Some(c)
}

/// A parameter's name in the API: the argument's id (snake case, as in the JSON).
fn param_name(a: &clap::Arg) -> String {
    a.get_id().as_str().replace('-', "_")
}

fn is_flag(a: &clap::Arg) -> bool {
    matches!(a.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// The arguments an endpoint takes (globals and help excluded).
fn endpoint_args(c: &clap::Command) -> Vec<clap::Arg> {
    c.get_arguments()
        .filter(|a| !a.is_global_set() && a.get_id() != "help" && a.get_id() != "version")
        .filter(|a| {
            ![
                "workspace",
                "format",
                "csv_raw",
                "quiet",
                "as_of",
                "lang",
                "engine",
            ]
            .contains(&a.get_id().as_str())
        })
        .cloned()
        .collect()
}

/// `shoplens --workspace W --format json --quiet [--engine E]`, to which a command's words and
/// flags are added. The engine is the server's own (`None`: in this process), never a caller's.
pub(crate) fn json_argv(workspace: &std::path::Path, engine: Option<&str>) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "shoplens".into(),
        "--workspace".into(),
        workspace.display().to_string(),
        "--format".into(),
        "json".into(),
        "--quiet".into(),
    ];
    if let Some(e) = engine {
        argv.push(format!("--engine={e}"));
    }
    argv
}

/// Runs the command line's analyses for the dashboard, on the served workspace and the server's
/// engine.
#[derive(Debug)]
pub(crate) struct CliCommands {
    workspace: PathBuf,
    engine: Option<String>,
}

impl CliCommands {
    /// Commands on the workspace at `workspace`, run on `engine`.
    pub(crate) fn new(workspace: PathBuf, engine: &Engine) -> CliCommands {
        CliCommands {
            workspace,
            engine: engine.flag(),
        }
    }
}

impl shoplens_server::Commands for CliCommands {
    fn run_json(&self, args: &[String]) -> Result<Vec<u8>, ApiError> {
        let mut argv = json_argv(&self.workspace, self.engine.as_deref());
        argv.extend(args.iter().cloned());
        run_json(&argv)
    }
}

/// Runs a command line and returns what it prints: arguments clap refuses are 400
/// `invalid_parameter` (with clap's first line), a command that fails is 422 `analysis_failed`.
pub(crate) fn run_json(argv: &[String]) -> Result<Vec<u8>, ApiError> {
    let cli = Cli::try_parse_from(argv).map_err(|e| {
        let text = e.render().to_string();
        let first = text
            .lines()
            .next()
            .unwrap_or("invalid parameters")
            .to_string();
        ApiError::new(
            ApiErrorCode::InvalidParameter,
            first.trim_start_matches("error: ").to_string(),
        )
    })?;
    let mut out = Vec::new();
    crate::commands::run_to(cli, &mut out)
        .map_err(|e| ApiError::new(ApiErrorCode::AnalysisFailed, format!("{e:#}")))?;
    Ok(out)
}

impl Api for CliApi {
    fn run(&self, words: &[String], params: &[(String, String)]) -> Result<Vec<u8>, ApiError> {
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        if !ALLOWED.contains(&w.as_slice()) {
            return Err(ApiError::new(
                ApiErrorCode::NotFound,
                format!("no endpoint /api/{} (see /api/openapi.json)", w.join("/")),
            ));
        }
        let cmd = subcommand(&w)
            .ok_or_else(|| ApiError::new(ApiErrorCode::NotFound, "no such command"))?;
        let args = endpoint_args(&cmd);
        let mut argv: Vec<String> = Vec::new();
        let mut options: Vec<String> = Vec::new();
        let mut positionals: Vec<(usize, String)> = Vec::new();
        for (k, v) in params {
            if let Some((_, flag)) = GLOBAL_PARAMS.iter().find(|(p, _)| p == k) {
                argv.push((*flag).to_string());
                argv.push(v.clone());
                continue;
            }
            let Some(a) = args.iter().find(|a| param_name(a) == *k) else {
                let known: Vec<String> = args.iter().map(param_name).collect();
                return Err(ApiError::new(
                    ApiErrorCode::InvalidParameter,
                    format!(
                        "unknown parameter `{k}`; this endpoint takes: {}",
                        known.join(", ")
                    ),
                ));
            };
            if a.is_positional() {
                let i = args
                    .iter()
                    .position(|x| x.get_id() == a.get_id())
                    .unwrap_or(0);
                positionals.push((i, v.clone()));
            } else if let Some(long) = a.get_long() {
                if is_flag(a) {
                    match v.as_str() {
                        "" | "true" | "1" => options.push(format!("--{long}")),
                        "false" | "0" => {}
                        _ => {
                            return Err(ApiError::new(
                                ApiErrorCode::InvalidParameter,
                                format!("`{k}` is true or false"),
                            ));
                        }
                    }
                } else {
                    options.push(format!("--{long}={v}"));
                }
            }
        }
        positionals.sort_by_key(|p| p.0);
        argv.extend(w.iter().map(|s| (*s).to_string()));
        argv.extend(options);
        if !positionals.is_empty() {
            argv.push("--".into());
            argv.extend(positionals.into_iter().map(|p| p.1));
        }
        self.commands.run_json(&argv)
    }

    fn openapi(&self) -> Value {
        let mut paths = Map::new();
        for words in ALLOWED {
            let Some(cmd) = subcommand(words) else {
                continue;
            };
            let mut parameters: Vec<Value> = endpoint_args(&cmd)
                .iter()
                .map(|a| {
                    let schema = if is_flag(a) {
                        json!({"type": "boolean"})
                    } else {
                        let values: Vec<String> = a
                            .get_possible_values()
                            .iter()
                            .map(|p| p.get_name().to_string())
                            .collect();
                        let mut s = json!({"type": "string"});
                        if !values.is_empty() {
                            s["enum"] = json!(values);
                        }
                        if let Some(d) = a.get_default_values().first() {
                            s["default"] = json!(d.to_string_lossy());
                        }
                        s
                    };
                    json!({
                        "name": param_name(a),
                        "in": "query",
                        "required": a.is_required_set() && a.get_default_values().is_empty(),
                        "description": a.get_help().map(ToString::to_string).unwrap_or_default(),
                        "schema": schema,
                    })
                })
                .collect();
            for (p, _) in GLOBAL_PARAMS {
                parameters.push(json!({"name": p, "in": "query", "required": false, "schema": {"type": "string"},
                    "description": if *p == "as_of" { "Analyse as of this date or instant (default: the newest data)." } else { "en or zh-CN" }}));
            }
            let summary = cmd.get_about().map(ToString::to_string).unwrap_or_default();
            paths.insert(
                format!("/api/{}", words.join("/")),
                json!({"get": {
                    "summary": summary,
                    "description": format!("The JSON of `shoplens --format json {}`; parameters are its flags (snake case) and arguments.", words.join(" ")),
                    "parameters": parameters,
                    "responses": {
                        "200": {"description": "The command's JSON output.", "content": {"application/json": {"schema": {"type": "object"}}}},
                        "400": {"$ref": "#/components/responses/Error"},
                        "401": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"},
                        "422": {"$ref": "#/components/responses/Error"}
                    }
                }}),
            );
        }
        json!({
            "openapi": "3.0.3",
            "info": {"title": "shoplens API", "version": env!("CARGO_PKG_VERSION"),
                     "description": "Every read-only analysis of the served workspace, with the command line's parameters and JSON fields. Authenticate with the read token as a bearer token."},
            "security": [{"bearer": []}],
            "paths": paths,
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
                "schemas": {"Error": {"type": "object", "properties": {
                    "success": {"type": "boolean"},
                    "error": {"type": "string", "enum": ["unauthorized", "not_found", "invalid_parameter", "analysis_failed", "internal"]},
                    "message": {"type": "string"}}}},
                "responses": {"Error": {"description": "An error with a stable code.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every typed endpoint takes exactly its command's flags, under the same names, and the
    /// flags' defaults read as the API reads a query are the endpoint's defaults, so a script can
    /// move between `shoplens --format json CMD --flag v` and `GET /api/CMD?flag=v`.
    #[test]
    fn typed_endpoints_take_their_commands_flags() {
        let endpoints = shoplens_server::typed_endpoints();
        assert!(endpoints.len() >= 8);
        for e in endpoints {
            let words = e.words;
            assert!(ALLOWED.contains(&words), "{words:?} is not an API command");
            let cmd = subcommand(words).expect("a command");
            let args = endpoint_args(&cmd);
            let flags: BTreeSet<String> = args.iter().map(param_name).collect();
            let params: BTreeSet<String> = e
                .defaults
                .as_object()
                .expect("parameters are an object")
                .keys()
                .cloned()
                .collect();
            assert_eq!(flags, params, "{words:?}: flags against API parameters");
            let query: Vec<(String, String)> = args
                .iter()
                .filter_map(|a| {
                    let d = a.get_default_values().first()?;
                    Some((param_name(a), d.to_string_lossy().into_owned()))
                })
                .collect();
            let query = serde_urlencoded::to_string(&query).expect("a query");
            let read = (e.parse)(&query).unwrap_or_else(|m| panic!("{words:?} `{query}`: {m}"));
            assert_eq!(read, e.defaults, "{words:?}: the flags' defaults `{query}`");
        }
    }
}
