//! The IDIS provider as the protocol layer sees it: schemas, configuration,
//! and dispatch to data sources (and, later, the `idis_environment`
//! resource).

pub mod config;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::data_sources::account;
use crate::protocol::cty::{self, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::Schema;
use crate::protocol::server::{unknown_type, Backend};
use config::Aws;

#[derive(Default)]
pub struct IdisProvider {
    aws: Mutex<Option<Arc<Aws>>>,
    /// Cancelled by StopProvider; every wait selects on it.
    stop: CancellationToken,
}

impl IdisProvider {
    pub fn new() -> Self {
        IdisProvider::default()
    }

    fn aws(&self) -> Result<Arc<Aws>, Diagnostics> {
        self.aws
            .lock()
            .ok()
            .and_then(|guard| guard.clone())
            .ok_or_else(|| {
                Diagnostic::error(
                    "Provider not configured",
                    "Terraform called the provider before configuring it; this is a bug in Terraform or the provider.",
                )
                .into()
            })
    }
}

#[tonic::async_trait]
impl Backend for IdisProvider {
    fn provider_schema(&self) -> Schema {
        config::schema()
    }

    fn data_source_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::from([(account::TYPE_NAME.to_string(), account::schema())])
    }

    fn validate_provider(&self, config: &Value) -> Diagnostics {
        config::validate(config)
    }

    async fn configure(&self, config: Value, _terraform_version: String) -> Diagnostics {
        let parsed: config::ProviderConfig = if config.is_null() {
            config::ProviderConfig::default()
        } else {
            match cty::from_value(&config) {
                Ok(parsed) => parsed,
                Err(e) => {
                    return Diagnostic::error(
                        "Provider configuration not known",
                        format!("{e}. The provider block must be known before planning: it cannot depend on resources that are not yet created."),
                    )
                    .into()
                }
            }
        };
        match Aws::connect(parsed, &self.stop).await {
            Ok(aws) => {
                if let Ok(mut guard) = self.aws.lock() {
                    *guard = Some(Arc::new(aws));
                }
                Diagnostics::new()
            }
            Err(d) => d,
        }
    }

    fn validate_data_source(&self, type_name: &str, _config: &Value) -> Diagnostics {
        match type_name {
            account::TYPE_NAME => Diagnostics::new(),
            other => unknown_type("data source", other).into(),
        }
    }

    async fn read_data_source(
        &self,
        type_name: &str,
        _config: Value,
    ) -> Result<Value, Diagnostics> {
        let aws = self.aws()?;
        match type_name {
            account::TYPE_NAME => account::read(&aws).await,
            other => Err(unknown_type("data source", other).into()),
        }
    }

    fn stop(&self) {
        self.stop.cancel();
    }
}
