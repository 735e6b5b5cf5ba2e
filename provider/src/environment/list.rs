//! `list "idis_environment"` (Terraform 1.14+, `terraform query`): the
//! environments of a region, each with its identity `{ name, region }`
//! and, when Terraform asks for it, the whole resource object as import
//! reads it. Names come from the ownership tags one page at a time
//! ([`inventory`]); each name is sent as soon as it is seen.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{orchestrate, schema, validate};
use crate::components::inventory::Inventory;
use crate::logging;
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{Attribute, Block, Schema};
use crate::protocol::server::{ListRequest, ListSink, Listed};
use crate::provider::config::Aws;

/// The `config` block of `list "idis_environment"`.
pub fn schema() -> Schema {
    Schema::new(
        0,
        Block::new("Lists the IDIS environments of one region: every environment with an AWS object of that region tagged `managed-by = terraform-provider-idis`, by the name in its `idis:environment` tag.")
            .attr(Attribute::optional("region", Type::String, "Region to list. Default: the provider's region.")),
    )
}

pub fn validate(config: &Value) -> Diagnostics {
    match config.get_attr("region").as_str() {
        Some(region) if !validate::is_region(region) => Diagnostic::error(
            "Invalid region",
            format!(
                "region = {region:?} is not an AWS region name: use one such as \"us-east-1\"."
            ),
        )
        .at(Path::root().attr("region"))
        .into(),
        _ => Diagnostics::new(),
    }
}

pub async fn list(aws: &Arc<Aws>, req: ListRequest, out: ListSink, cancel: &CancellationToken) {
    let diagnostics = validate(&req.config);
    if diagnostics.has_errors() {
        out.send(Listed::failed(diagnostics)).await;
        return;
    }
    let region = req
        .config
        .get_attr("region")
        .as_str()
        .unwrap_or(&aws.region)
        .to_string();
    let mut inventory = Inventory::new(aws, &region);
    let mut pages = 0;
    loop {
        let page = tokio::select! {
            _ = cancel.cancelled() => return,
            page = inventory.next_page() => page,
        };
        let names = match page {
            Ok(Some(names)) => names,
            Ok(None) => break,
            Err(e) => {
                out.send(Listed::failed(
                    Diagnostic::error(
                        format!("Cannot list environments in {region}"),
                        e.to_string(),
                    )
                    .into(),
                ))
                .await;
                return;
            }
        };
        pages += 1;
        logging::debug(&format!(
            "ListResource idis_environment: page {pages} in {region}: {} new environment(s)",
            names.len()
        ));
        for name in names {
            let item = match listed(aws, &name, &region, req.include_resource_object, cancel).await
            {
                Ok(Some(item)) => item,
                // Tagged, but nothing regional left (being deleted).
                Ok(None) => continue,
                Err(diagnostics) => Listed::failed(diagnostics),
            };
            if !out.send(item).await {
                return;
            }
        }
    }
}

/// One environment as Terraform lists it. With the resource object, the
/// environment is read as import reads it, and skipped when nothing of
/// it is left in the region.
async fn listed(
    aws: &Arc<Aws>,
    name: &str,
    region: &str,
    with_object: bool,
    cancel: &CancellationToken,
) -> Result<Option<Listed>, Diagnostics> {
    let mut key = Value::Object(BTreeMap::new());
    key.set_attr("name", Value::string(name));
    key.set_attr("region", Value::string(region));
    let state = if with_object {
        match orchestrate::lookup(aws, name, region, cancel).await? {
            Some(state) => Some(state),
            None => return Ok(None),
        }
    } else {
        None
    };
    Ok(Some(Listed {
        identity: schema::identity(&key),
        display_name: format!("{name} ({region})"),
        state,
        diagnostics: Diagnostics::new(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_region_is_refused_naming_it() {
        let mut c = Value::Object(BTreeMap::new());
        c.set_attr("region", Value::string("moon-1"));
        let d = validate(&c);
        assert!(d.has_errors());
        assert_eq!(d.0[0].path, Some(Path::root().attr("region")));
        assert!(validate(&Value::Null).0.is_empty());
        c.set_attr("region", Value::string("eu-west-1"));
        assert!(validate(&c).0.is_empty());
    }
}
