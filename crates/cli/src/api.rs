//! The API's endpoints against the command line's commands: each endpoint takes exactly its
//! command's flags, under the same names, with the same defaults.

use std::collections::BTreeSet;

use clap::CommandFactory;

use crate::Cli;

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

/// The arguments an endpoint takes: the command's own (globals, output flags and help aside).
fn endpoint_args(c: &clap::Command) -> Vec<clap::Arg> {
    c.get_arguments()
        .filter(|a| !a.is_global_set() && a.get_id() != "help" && a.get_id() != "version")
        .cloned()
        .collect()
}

/// Every endpoint takes exactly its command's flags and arguments, under the same names, and
/// the flags' defaults read as the API reads a query are the endpoint's defaults, so a script
/// can move between `shoplens --format json CMD --flag v` and `GET /api/CMD?flag=v`.
#[test]
fn endpoints_take_their_commands_flags() {
    let endpoints = shoplens_server::typed_endpoints();
    assert_eq!(endpoints.len(), 31);
    for e in endpoints {
        let words = e.words;
        let cmd = subcommand(words).unwrap_or_else(|| panic!("{words:?} is not a command"));
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
