//! Built-in presets: mapping files for the public datasets shoplens is tested on, shipped inside
//! the binary. Each is an ordinary mapping (see docs/mapping.md), so a user can start their own
//! mapping from one (`shoplens presets --show NAME`).

use crate::error::{Error, Result};
use crate::ingest::mapping::MappingFile;

/// (name, TOML text) of every preset.
pub const PRESETS: &[(&str, &str)] = &[
    ("cdnow", include_str!("presets/cdnow.toml")),
    ("online-retail", include_str!("presets/online-retail.toml")),
    ("groceries", include_str!("presets/groceries.toml")),
    ("taobao", include_str!("presets/taobao.toml")),
    ("rees46", include_str!("presets/rees46.toml")),
    ("hillstrom", include_str!("presets/hillstrom.toml")),
    ("instacart", include_str!("presets/instacart.toml")),
    (
        "completejourney",
        include_str!("presets/completejourney.toml"),
    ),
    (
        "womens-clothing-reviews",
        include_str!("presets/womens-clothing-reviews.toml"),
    ),
];

/// The TOML text of a preset.
pub fn preset_text(name: &str) -> Result<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "unknown preset `{name}`; presets: {}",
                PRESETS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// A preset, parsed.
pub fn preset(name: &str) -> Result<MappingFile> {
    MappingFile::parse(preset_text(name)?, &format!("preset {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_names_itself() {
        for (name, _) in PRESETS {
            let m = preset(name).unwrap();
            assert_eq!(m.name.as_deref(), Some(*name));
        }
    }
}
