//! Read-only lookups.

pub mod account;
pub mod environment;

#[cfg(test)]
mod tests {
    use crate::protocol::schema::Block;
    use crate::protocol::server::Backend;
    use crate::provider::IdisProvider;

    /// Paths of attributes and blocks without a description.
    fn undescribed(path: &str, block: &Block, out: &mut Vec<String>) {
        if block.description.trim().is_empty() {
            out.push(format!("{path} (block)"));
        }
        for a in &block.attributes {
            if a.description.trim().is_empty() {
                out.push(format!("{path}.{}", a.name));
            }
        }
        for b in &block.blocks {
            undescribed(&format!("{path}.{}", b.name), &b.block, out);
        }
    }

    /// The Registry docs are generated from these descriptions
    /// (`make docs`); an attribute without one would be a blank line there.
    #[test]
    fn every_attribute_of_every_schema_says_what_it_is() {
        let provider = IdisProvider::new();
        let mut missing = Vec::new();
        undescribed("provider", &provider.provider_schema().block, &mut missing);
        let resources = provider.resource_schemas();
        let data_sources = provider.data_source_schemas();
        assert_eq!(resources.keys().collect::<Vec<_>>(), ["idis_environment"]);
        assert_eq!(
            data_sources.keys().collect::<Vec<_>>(),
            ["idis_account", "idis_environment"]
        );
        let ephemeral = provider.ephemeral_schemas();
        let lists = provider.list_schemas();
        assert_eq!(
            ephemeral.keys().collect::<Vec<_>>(),
            ["idis_cluster_auth", "idis_database_credentials"]
        );
        assert_eq!(lists.keys().collect::<Vec<_>>(), ["idis_environment"]);
        for (name, schema) in resources
            .iter()
            .chain(data_sources.iter())
            .chain(ephemeral.iter())
            .chain(lists.iter())
        {
            undescribed(name, &schema.block, &mut missing);
        }
        assert_eq!(missing, Vec::<String>::new());
    }
}
