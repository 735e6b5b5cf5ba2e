//! Schemas as plain Rust data: attributes, nested blocks, and the cty type
//! each block's value has on the wire. Data sources and resources declare
//! their schema with these builders; the server turns them into protobuf.

use std::collections::BTreeMap;

use super::cty::Type;
use super::proto::tfplugin5 as pb;

#[derive(Clone, Debug)]
pub struct Schema {
    pub version: i64,
    pub block: Block,
}

#[derive(Clone, Debug, Default)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
}

#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Why the attribute is deprecated and what to use instead; Terraform
    /// 1.15 shows it where the configuration sets the attribute.
    pub deprecation: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one; null when absent from configuration.
    Single,
    /// Always present; Terraform synthesizes one with null attributes.
    Group,
    List,
    Set,
}

#[derive(Clone, Debug)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
}

impl Attribute {
    fn new(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            deprecation: None,
        }
    }
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            required: true,
            ..Attribute::new(name, ty, description)
        }
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            ..Attribute::new(name, ty, description)
        }
    }
    /// Optional, and planned by the provider when left out (defaults).
    pub fn optional_computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            optional: true,
            computed: true,
            ..Attribute::new(name, ty, description)
        }
    }
    pub fn computed(name: &str, ty: Type, description: &str) -> Self {
        Attribute {
            computed: true,
            ..Attribute::new(name, ty, description)
        }
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    /// Marks the attribute deprecated, saying what to use instead.
    pub fn deprecated(mut self, message: &str) -> Self {
        self.deprecation = Some(message.to_string());
        self
    }
}

impl Block {
    pub fn new(description: &str) -> Self {
        Block {
            description: description.to_string(),
            ..Block::default()
        }
    }
    pub fn attr(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, name: &str, nesting: Nesting, block: Block) -> Self {
        self.blocks.push(NestedBlock {
            name: name.to_string(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        });
        self
    }

    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }

    pub fn nested(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// The cty object type of this block's value on the wire.
    pub fn value_type(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for b in &self.blocks {
            let inner = b.block.value_type();
            let ty = match b.nesting {
                Nesting::Single | Nesting::Group => inner,
                Nesting::List => Type::list(inner),
                Nesting::Set => Type::set(inner),
            };
            attrs.insert(b.name.clone(), ty);
        }
        Type::Object(attrs)
    }

    fn to_proto(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: self
                .attributes
                .iter()
                .map(|a| pb::schema::Attribute {
                    name: a.name.clone(),
                    r#type: a.ty.to_json_bytes(),
                    description: a.description.clone(),
                    required: a.required,
                    optional: a.optional,
                    computed: a.computed,
                    sensitive: a.sensitive,
                    description_kind: pb::StringKind::Markdown as i32,
                    deprecated: a.deprecation.is_some(),
                    write_only: false,
                    deprecation_message: a.deprecation.clone().unwrap_or_default(),
                })
                .collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.clone(),
                    block: Some(b.block.to_proto()),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::Group => pb::schema::nested_block::NestingMode::Group,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                        Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                    } as i32,
                    min_items: b.min_items,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.clone(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
            deprecation_message: String::new(),
        }
    }
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Self {
        Schema { version, block }
    }

    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }

    pub fn to_proto(&self) -> pb::Schema {
        let mut block = self.block.to_proto();
        block.version = self.version;
        pb::Schema {
            version: self.version,
            block: Some(block),
        }
    }
}

/// What identifies one object of a managed resource type for Terraform
/// 1.12+ (`import { identity = {...} }`, `terraform query`): a small,
/// versioned object of its own, separate from the resource's schema.
#[derive(Clone, Debug)]
pub struct IdentitySchema {
    pub version: i64,
    pub attributes: Vec<IdentityAttribute>,
}

#[derive(Clone, Debug)]
pub struct IdentityAttribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    /// Import needs it; otherwise the provider can supply it.
    pub required_for_import: bool,
}

impl IdentityAttribute {
    pub fn required(name: &str, ty: Type, description: &str) -> Self {
        IdentityAttribute {
            name: name.to_string(),
            ty,
            description: description.to_string(),
            required_for_import: true,
        }
    }
    pub fn optional(name: &str, ty: Type, description: &str) -> Self {
        IdentityAttribute {
            required_for_import: false,
            ..IdentityAttribute::required(name, ty, description)
        }
    }
}

impl IdentitySchema {
    pub fn value_type(&self) -> Type {
        Type::Object(
            self.attributes
                .iter()
                .map(|a| (a.name.clone(), a.ty.clone()))
                .collect(),
        )
    }

    pub fn to_proto(&self) -> pb::ResourceIdentitySchema {
        pb::ResourceIdentitySchema {
            version: self.version,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| pb::resource_identity_schema::IdentityAttribute {
                    name: a.name.clone(),
                    r#type: a.ty.to_json_bytes(),
                    required_for_import: a.required_for_import,
                    optional_for_import: !a.required_for_import,
                    description: a.description.clone(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_blocks_shape_the_object_type() {
        let block = Block::new("x")
            .attr(Attribute::required("name", Type::String, "n"))
            .block(
                "one",
                Nesting::Single,
                Block::new("").attr(Attribute::optional("a", Type::Bool, "")),
            )
            .block(
                "many",
                Nesting::List,
                Block::new("").attr(Attribute::optional("b", Type::Number, "")),
            );
        let ty = block.value_type();
        assert_eq!(
            ty.to_json(),
            serde_json::json!(["object", {
                "name": "string",
                "one": ["object", {"a": "bool"}],
                "many": ["list", ["object", {"b": "number"}]],
            }])
        );
    }

    #[test]
    fn a_deprecated_attribute_carries_its_message_and_an_identity_its_import_rules() {
        let block = Block::new("x")
            .attr(Attribute::optional("old", Type::String, "o").deprecated("Use `new` instead."))
            .attr(Attribute::optional("new", Type::String, "n"));
        let proto = block.to_proto();
        assert!(proto.attributes[0].deprecated);
        assert_eq!(
            proto.attributes[0].deprecation_message,
            "Use `new` instead."
        );
        assert!(!proto.attributes[1].deprecated);
        assert!(proto.attributes[1].deprecation_message.is_empty());

        let identity = IdentitySchema {
            version: 0,
            attributes: vec![
                IdentityAttribute::required("name", Type::String, "n"),
                IdentityAttribute::optional("region", Type::String, "r"),
            ],
        }
        .to_proto();
        let rules: Vec<(bool, bool)> = identity
            .identity_attributes
            .iter()
            .map(|a| (a.required_for_import, a.optional_for_import))
            .collect();
        assert_eq!(rules, [(true, false), (false, true)]);
    }
}
