//! Parameters of an analysis as its users give them: each analysis has one `…Params` type that
//! is both the command line's flags (`clap::Args`) and the API's query (`serde::Deserialize`),
//! with the same names and the same defaults, and one `spec` method that turns it into the
//! analysis's spec. This module holds what those types share.

use serde::{Deserialize, Deserializer};

/// The parameters `P` as their flags' defaults give them (a flag without a default is unset,
/// an empty list, false, or, when the command line requires it, empty text).
///
/// # Panics
/// When `P`'s flags are not a valid clap definition (a bug, caught by any test that builds
/// the parameters).
pub fn flag_defaults<P: clap::Args + clap::FromArgMatches>() -> P {
    let cmd = P::augment_args(clap::Command::new("defaults").no_binary_name(true)).mut_args(|a| {
        if !a.is_required_set() {
            return a;
        }
        let a = a.required(false);
        if matches!(a.get_action(), clap::ArgAction::Set) && a.get_default_values().is_empty() {
            a.default_value("")
        } else {
            a
        }
    });
    let m = cmd
        .try_get_matches_from(Vec::<String>::new())
        .unwrap_or_else(|e| panic!("flags without values: {e}"));
    P::from_arg_matches(&m).unwrap_or_else(|e| panic!("every flag has a default: {e}"))
}

/// A list as the command line's `--flag a,b` takes it: a text of comma-separated values (the
/// API joins a repeated query key with commas), or a sequence.
///
/// # Errors
/// When the value is neither text nor a sequence of texts.
pub fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        One(String),
        Many(Vec<String>),
    }
    let given = match Given::deserialize(d)? {
        Given::One(s) => vec![s],
        Given::Many(v) => v,
    };
    Ok(given
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

/// Numbers as the command line's `--flag 0.5,0.5` takes them: comma-separated text, or a
/// sequence.
///
/// # Errors
/// When a value is not a number.
pub fn comma_numbers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    comma_list(d)?
        .iter()
        .map(|s| {
            s.parse::<f64>()
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, clap::Args, Deserialize)]
    struct P {
        /// A number.
        #[arg(long, default_value_t = 7)]
        n: i64,
        /// Steps.
        #[arg(long, value_delimiter = ',', required = true)]
        #[serde(deserialize_with = "comma_list")]
        steps: Vec<String>,
        /// A switch.
        #[arg(long)]
        on: bool,
        /// Optional.
        #[arg(long)]
        from: Option<String>,
        /// Required text.
        #[arg(long)]
        name: String,
    }

    #[test]
    fn defaults_are_the_flags_defaults() {
        let p: P = flag_defaults();
        assert_eq!(
            p,
            P {
                n: 7,
                steps: vec![],
                on: false,
                from: None,
                name: String::new(),
            }
        );
    }

    #[test]
    fn comma_lists_split_as_the_command_line_does() {
        let p: P = serde_urlencoded::from_str("n=1&steps=a,%20b,,c&on=true&name=x").unwrap();
        assert_eq!(p.steps, ["a", "b", "c"]);
        assert!(p.on);
    }
}
