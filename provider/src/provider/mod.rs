//! The IDIS provider as the protocol layer sees it: schemas, configuration,
//! and dispatch to data sources (and, later, the `idis_environment`
//! resource).

pub mod config;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::actions;
use crate::data_sources::{account, environment as environment_data};
use crate::environment::{
    list, orchestrate, plan, preflight, schema as environment, upgrade, validate,
};
use crate::ephemeral;
use crate::protocol::cty::{self, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};
use crate::protocol::schema::{IdentitySchema, Schema};
use crate::protocol::server::{
    unknown_type, ActionProgress, ApplyRequest, ApplyResponse, Backend, ImportTarget, Imported,
    ListRequest, ListSink, Listed, Opened, PlanRequest, PlanResponse, ReadRequest, ReadResponse,
    Renewed,
};
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
        BTreeMap::from([
            (account::TYPE_NAME.to_string(), account::schema()),
            (
                environment_data::TYPE_NAME.to_string(),
                environment_data::schema(),
            ),
        ])
    }

    fn resource_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::from([(environment::TYPE_NAME.to_string(), environment::schema())])
    }

    fn identity_schemas(&self) -> BTreeMap<String, IdentitySchema> {
        BTreeMap::from([(
            environment::TYPE_NAME.to_string(),
            environment::identity_schema(),
        )])
    }

    fn identity(&self, type_name: &str, state: &Value) -> Value {
        match type_name {
            environment::TYPE_NAME => environment::identity(state),
            _ => Value::Null,
        }
    }

    fn ephemeral_schemas(&self) -> BTreeMap<String, Schema> {
        ephemeral::schemas()
    }

    fn list_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::from([(environment::TYPE_NAME.to_string(), list::schema())])
    }

    fn validate_resource(&self, type_name: &str, config: &Value) -> Diagnostics {
        match type_name {
            environment::TYPE_NAME => validate::validate(config),
            other => unknown_type("resource", other).into(),
        }
    }

    async fn plan_resource(&self, req: PlanRequest) -> PlanResponse {
        if req.type_name != environment::TYPE_NAME {
            return PlanResponse::failed(unknown_type("resource", &req.type_name).into());
        }
        let aws = match self.aws() {
            Ok(aws) => aws,
            Err(d) => return PlanResponse::failed(d),
        };
        let mut plan = plan::plan(
            &req.prior_state,
            &req.proposed_new_state,
            &req.config,
            &aws.region,
        );
        if !plan.diagnostics.has_errors() {
            plan.diagnostics.extend(
                preflight::check_plan(&aws, &req.prior_state, &plan.planned, &self.stop).await,
            );
        }
        PlanResponse {
            planned_state: plan.planned,
            requires_replace: plan.requires_replace,
            planned_private: req.prior_private,
            diagnostics: plan.diagnostics,
        }
    }

    async fn apply_resource(&self, req: ApplyRequest) -> ApplyResponse {
        if req.type_name != environment::TYPE_NAME {
            return ApplyResponse::failed(unknown_type("resource", &req.type_name).into());
        }
        let aws = match self.aws() {
            Ok(aws) => aws,
            Err(d) => return ApplyResponse::failed(d),
        };
        let applied = if req.planned_state.is_null() {
            orchestrate::destroy(&aws, &req.prior_state, &self.stop).await
        } else {
            orchestrate::converge(&aws, &req.prior_state, &req.planned_state, &self.stop).await
        };
        ApplyResponse {
            new_state: applied.state,
            private: Vec::new(),
            diagnostics: applied.diagnostics,
        }
    }

    async fn read_resource(&self, req: ReadRequest) -> ReadResponse {
        if req.type_name != environment::TYPE_NAME {
            return ReadResponse::failed(unknown_type("resource", &req.type_name).into());
        }
        let aws = match self.aws() {
            Ok(aws) => aws,
            Err(d) => return ReadResponse::failed(d),
        };
        match orchestrate::refresh(&aws, &req.state, &self.stop).await {
            Ok(refreshed) => ReadResponse {
                state: refreshed.state,
                private: req.private,
                diagnostics: refreshed.diagnostics,
            },
            // Keep the prior state: a failed read must not drop the resource.
            Err(diagnostics) => ReadResponse {
                state: req.state,
                private: req.private,
                diagnostics,
            },
        }
    }

    async fn import_resource(
        &self,
        type_name: &str,
        target: ImportTarget,
    ) -> Result<Vec<Imported>, Diagnostics> {
        if type_name != environment::TYPE_NAME {
            return Err(unknown_type("resource", type_name).into());
        }
        let aws = self.aws()?;
        let state = match target {
            ImportTarget::Id(id) => orchestrate::import(&aws, &id, &self.stop).await?,
            ImportTarget::Identity(identity) => {
                orchestrate::import_identity(&aws, &identity, &self.stop).await?
            }
        };
        Ok(vec![Imported {
            type_name: type_name.to_string(),
            state,
            private: Vec::new(),
        }])
    }

    fn upgrade_resource_state(
        &self,
        type_name: &str,
        version: i64,
        raw_json: &[u8],
    ) -> Result<Value, Diagnostics> {
        match type_name {
            environment::TYPE_NAME => upgrade::upgrade_raw(version, raw_json),
            other => Err(unknown_type("resource", other).into()),
        }
    }

    fn upgrade_resource_identity(
        &self,
        type_name: &str,
        version: i64,
        raw_json: &[u8],
    ) -> Result<Value, Diagnostics> {
        match type_name {
            environment::TYPE_NAME => upgrade::upgrade_identity(version, raw_json),
            other => Err(unknown_type("resource", other).into()),
        }
    }

    fn validate_ephemeral(&self, type_name: &str, config: &Value) -> Diagnostics {
        if ephemeral::schemas().contains_key(type_name) {
            ephemeral::validate(config)
        } else {
            unknown_type("ephemeral resource", type_name).into()
        }
    }

    async fn open_ephemeral(&self, type_name: &str, config: Value) -> Result<Opened, Diagnostics> {
        let aws = self.aws()?;
        ephemeral::open(&aws, type_name, config, &self.stop).await
    }

    async fn renew_ephemeral(
        &self,
        type_name: &str,
        private: Vec<u8>,
    ) -> Result<Renewed, Diagnostics> {
        let aws = self.aws()?;
        ephemeral::renew(&aws, type_name, &private, &self.stop).await
    }

    async fn close_ephemeral(&self, type_name: &str, private: Vec<u8>) -> Diagnostics {
        ephemeral::close(type_name, &private)
    }

    fn validate_list(&self, type_name: &str, config: &Value) -> Diagnostics {
        match type_name {
            environment::TYPE_NAME => list::validate(config),
            other => unknown_type("list resource", other).into(),
        }
    }

    async fn list_resource(&self, req: ListRequest, out: ListSink) {
        if req.type_name != environment::TYPE_NAME {
            out.send(Listed::failed(
                unknown_type("list resource", &req.type_name).into(),
            ))
            .await;
            return;
        }
        match self.aws() {
            Ok(aws) => list::list(&aws, req, out, &self.stop).await,
            Err(d) => {
                out.send(Listed::failed(d)).await;
            }
        }
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

    fn validate_data_source(&self, type_name: &str, config: &Value) -> Diagnostics {
        match type_name {
            account::TYPE_NAME => Diagnostics::new(),
            environment_data::TYPE_NAME => environment_data::validate(config),
            other => unknown_type("data source", other).into(),
        }
    }

    async fn read_data_source(&self, type_name: &str, config: Value) -> Result<Value, Diagnostics> {
        let aws = self.aws()?;
        match type_name {
            account::TYPE_NAME => account::read(&aws).await,
            environment_data::TYPE_NAME => environment_data::read(&aws, &config, &self.stop).await,
            other => Err(unknown_type("data source", other).into()),
        }
    }

    fn action_schemas(&self) -> BTreeMap<String, Schema> {
        actions::schemas()
    }

    fn validate_action(&self, type_name: &str, config: &Value) -> Diagnostics {
        if actions::schemas().contains_key(type_name) {
            actions::validate(type_name, config)
        } else {
            unknown_type("action", type_name).into()
        }
    }

    async fn plan_action(&self, type_name: &str, config: Value) -> Diagnostics {
        match self.aws() {
            Ok(aws) => actions::plan(&aws, type_name, &config, &self.stop).await,
            Err(d) => d,
        }
    }

    async fn invoke_action(
        &self,
        type_name: &str,
        config: Value,
        progress: ActionProgress,
    ) -> Diagnostics {
        match self.aws() {
            Ok(aws) => actions::invoke(&aws, type_name, config, progress, &self.stop).await,
            Err(d) => d,
        }
    }

    fn stop(&self) {
        self.stop.cancel();
    }

    /// A stopped drill deletes what it made before Terraform goes on.
    async fn stopped(&self) {
        actions::settle(STOP_CLEANUP_LIMIT).await;
    }
}

/// How long StopProvider waits for drills to clean up.
const STOP_CLEANUP_LIMIT: std::time::Duration = std::time::Duration::from_secs(90);
