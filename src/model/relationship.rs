//! Typed, weighted, bi-temporal links between memories, and the 35-type vocabulary.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::InvalidInput;

/// The seven families the relationship types fall into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelationshipCategory {
    Causal,
    Solution,
    Context,
    Learning,
    Similarity,
    Workflow,
    Quality,
}

impl RelationshipCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipCategory::Causal => "causal",
            RelationshipCategory::Solution => "solution",
            RelationshipCategory::Context => "context",
            RelationshipCategory::Learning => "learning",
            RelationshipCategory::Similarity => "similarity",
            RelationshipCategory::Workflow => "workflow",
            RelationshipCategory::Quality => "quality",
        }
    }
}

macro_rules! relationship_types {
    ($( $variant:ident = $name:literal, $category:ident, $strength:literal, $confidence:literal, $symmetric:literal; )*) => {
        /// The 35 relationship types MemoryGraph accepts, stored by their upper-case name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum RelationshipType {
            $( #[serde(rename = $name)] $variant, )*
        }

        impl RelationshipType {
            pub const ALL: &'static [RelationshipType] = &[$(RelationshipType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $(RelationshipType::$variant => $name,)* }
            }

            pub fn category(self) -> RelationshipCategory {
                match self { $(RelationshipType::$variant => RelationshipCategory::$category,)* }
            }

            /// The strength used when a caller gives none: how much this kind of link
            /// usually says about the two memories.
            pub fn default_strength(self) -> f64 {
                match self { $(RelationshipType::$variant => $strength,)* }
            }

            /// The confidence used when a caller gives none.
            pub fn default_confidence(self) -> f64 {
                match self { $(RelationshipType::$variant => $confidence,)* }
            }

            /// Symmetric links read the same both ways, so A→B plus B→A is not a cycle.
            pub fn is_symmetric(self) -> bool {
                match self { $(RelationshipType::$variant => $symmetric,)* }
            }
        }
    };
}

relationship_types! {
    Causes = "CAUSES", Causal, 0.8, 0.7, false;
    Triggers = "TRIGGERS", Causal, 0.7, 0.7, false;
    LeadsTo = "LEADS_TO", Causal, 0.6, 0.6, false;
    Prevents = "PREVENTS", Causal, 0.7, 0.7, false;
    Breaks = "BREAKS", Causal, 0.8, 0.7, false;
    Solves = "SOLVES", Solution, 0.9, 0.8, false;
    Addresses = "ADDRESSES", Solution, 0.7, 0.7, false;
    AlternativeTo = "ALTERNATIVE_TO", Solution, 0.6, 0.7, true;
    Improves = "IMPROVES", Solution, 0.7, 0.7, false;
    Replaces = "REPLACES", Solution, 0.8, 0.8, false;
    OccursIn = "OCCURS_IN", Context, 0.6, 0.8, false;
    AppliesTo = "APPLIES_TO", Context, 0.6, 0.7, false;
    WorksWith = "WORKS_WITH", Context, 0.7, 0.7, true;
    Requires = "REQUIRES", Context, 0.8, 0.8, false;
    UsedIn = "USED_IN", Context, 0.6, 0.7, false;
    BuildsOn = "BUILDS_ON", Learning, 0.7, 0.8, false;
    Contradicts = "CONTRADICTS", Learning, 0.8, 0.6, true;
    Confirms = "CONFIRMS", Learning, 0.7, 0.8, false;
    Generalizes = "GENERALIZES", Learning, 0.6, 0.7, false;
    Specializes = "SPECIALIZES", Learning, 0.6, 0.7, false;
    SimilarTo = "SIMILAR_TO", Similarity, 0.6, 0.7, true;
    VariantOf = "VARIANT_OF", Similarity, 0.7, 0.7, false;
    RelatedTo = "RELATED_TO", Similarity, 0.5, 0.6, true;
    AnalogyTo = "ANALOGY_TO", Similarity, 0.5, 0.6, false;
    OppositeOf = "OPPOSITE_OF", Similarity, 0.7, 0.7, true;
    Follows = "FOLLOWS", Workflow, 0.7, 0.8, false;
    DependsOn = "DEPENDS_ON", Workflow, 0.8, 0.8, false;
    Enables = "ENABLES", Workflow, 0.7, 0.7, false;
    Blocks = "BLOCKS", Workflow, 0.8, 0.7, false;
    ParallelTo = "PARALLEL_TO", Workflow, 0.6, 0.7, true;
    EffectiveFor = "EFFECTIVE_FOR", Quality, 0.8, 0.7, false;
    IneffectiveFor = "INEFFECTIVE_FOR", Quality, 0.7, 0.7, false;
    PreferredOver = "PREFERRED_OVER", Quality, 0.7, 0.7, false;
    DeprecatedBy = "DEPRECATED_BY", Quality, 0.8, 0.8, false;
    ValidatedBy = "VALIDATED_BY", Quality, 0.8, 0.8, false;
}

impl fmt::Display for RelationshipType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RelationshipType {
    /// Parses a type name for the named field, accepting any case.
    pub fn parse_field(field: &'static str, s: &str) -> Result<Self, InvalidInput> {
        let wanted = s.trim().to_ascii_uppercase();
        RelationshipType::ALL
            .iter()
            .copied()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| {
                InvalidInput::new(
                    field,
                    format!(
                        "unknown relationship type {}; allowed: {}",
                        super::quote(s),
                        RelationshipType::ALL
                            .iter()
                            .map(|t| t.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
    }
}

impl FromStr for RelationshipType {
    type Err = InvalidInput;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RelationshipType::parse_field("relationship_type", s)
    }
}

/// What MemoryGraph extracts from a relationship's free-text context, stored as a JSON
/// string inside the relationship's properties.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RelationshipContext {
    pub text: String,
    pub scope: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub evidence: Vec<String>,
    pub temporal: Option<String>,
    #[serde(default)]
    pub exceptions: Vec<String>,
}

/// A validated relationship about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelationship {
    pub from_id: String,
    pub to_id: String,
    pub rel_type: RelationshipType,
    pub strength: f64,
    pub confidence: f64,
    pub context: Option<RelationshipContext>,
}

impl NewRelationship {
    /// A link the program makes itself: the type's default strength and confidence, no
    /// context.
    pub fn plain(from_id: &str, to_id: &str, rel_type: RelationshipType) -> NewRelationship {
        NewRelationship {
            from_id: from_id.to_string(),
            to_id: to_id.to_string(),
            rel_type,
            strength: rel_type.default_strength(),
            confidence: rel_type.default_confidence(),
            context: None,
        }
    }
}

/// A relationship as read back from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Relationship {
    pub id: String,
    pub from_id: String,
    pub to_id: String,
    #[serde(rename = "type")]
    pub rel_type: String,
    pub strength: f64,
    pub confidence: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<RelationshipContext>,
    pub created_at: String,
    pub valid_from: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_is_complete() {
        assert_eq!(RelationshipType::ALL.len(), 35);
        let symmetric: Vec<_> = RelationshipType::ALL
            .iter()
            .filter(|t| t.is_symmetric())
            .map(|t| t.as_str())
            .collect();
        assert_eq!(
            symmetric,
            [
                "ALTERNATIVE_TO",
                "WORKS_WITH",
                "CONTRADICTS",
                "SIMILAR_TO",
                "RELATED_TO",
                "OPPOSITE_OF",
                "PARALLEL_TO"
            ]
        );
        for category in [RelationshipCategory::Causal, RelationshipCategory::Quality] {
            assert_eq!(
                RelationshipType::ALL
                    .iter()
                    .filter(|t| t.category() == category)
                    .count(),
                5
            );
        }
        assert_eq!(
            "solves".parse::<RelationshipType>().unwrap(),
            RelationshipType::Solves
        );
        assert!("SOLVE".parse::<RelationshipType>().is_err());
    }
}
