//! Why a model refused its input. Each variant reads as one sentence naming the value at fault.

/// A model's refusal of its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A threshold that is not a non-negative decimal (`text`, as given).
    #[error("{text:?} is not a non-negative decimal number")]
    NotADecimal {
        /// The text as given.
        text: String,
    },
    /// A threshold with more digits than an exact fraction holds.
    #[error("{text:?}: at most 9 integer and {max_fraction} decimal digits")]
    TooManyDigits {
        /// The text as given.
        text: String,
        /// Most decimal digits allowed.
        max_fraction: usize,
    },
    /// The control named is not among the variants.
    #[error("control `{control}` is not a variant; variants: {}", variants.join(", "))]
    UnknownControl {
        /// The control named.
        control: String,
        /// The variants seen, sorted.
        variants: Vec<String>,
    },
    /// Expected traffic weights given for another number of variants.
    #[error("{weights} weights for {} variants ({})", variants.len(), variants.join(", "))]
    WeightCount {
        /// Weights given.
        weights: usize,
        /// The variants seen, sorted.
        variants: Vec<String>,
    },
}
