//! The tfplugin5 `Provider` service. It decodes every DynamicValue with the
//! schema of its type, hands typed values to a [`Backend`], encodes the
//! answers, and turns every failure — including a panic — into diagnostics,
//! so Terraform never sees "plugin crashed".

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use futures_util::{FutureExt, Stream};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::cty::{self, Path, Type, Value};
use super::diag::{Diagnostic, Diagnostics};
use super::proto::tfplugin5 as pb;
use super::schema::{IdentitySchema, Schema};
use crate::logging;

/// What a provider implementation gives the protocol layer: schemas and
/// operations on decoded values. Resource methods have defaults that report
/// an unknown type, so a backend implements only what it has.
#[tonic::async_trait]
pub trait Backend: Send + Sync + 'static {
    fn provider_schema(&self) -> Schema;
    fn data_source_schemas(&self) -> BTreeMap<String, Schema>;
    fn resource_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::new()
    }

    fn validate_provider(&self, config: &Value) -> Diagnostics;
    async fn configure(&self, config: Value, terraform_version: String) -> Diagnostics;

    fn validate_data_source(&self, type_name: &str, config: &Value) -> Diagnostics;
    async fn read_data_source(&self, type_name: &str, config: Value) -> Result<Value, Diagnostics>;

    /// Identity schemas of managed resource types (Terraform 1.12+).
    fn identity_schemas(&self) -> BTreeMap<String, IdentitySchema> {
        BTreeMap::new()
    }
    /// The identity of a resource object, from its state; null when the
    /// type has no identity or the state cannot say.
    fn identity(&self, _type_name: &str, _state: &Value) -> Value {
        Value::Null
    }
    /// Ephemeral resource types (Terraform 1.10+).
    fn ephemeral_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::new()
    }
    /// List resource types (`terraform query`, Terraform 1.14+): the
    /// schema of their `config` block.
    fn list_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::new()
    }

    fn validate_resource(&self, type_name: &str, _config: &Value) -> Diagnostics {
        unknown_type("resource", type_name).into()
    }
    /// Brings stored state of schema `version` (its raw JSON, as Terraform
    /// kept it) to the current schema.
    fn upgrade_resource_state(
        &self,
        type_name: &str,
        _version: i64,
        _raw_json: &[u8],
    ) -> Result<Value, Diagnostics> {
        Err(unknown_type("resource", type_name).into())
    }
    /// Brings a stored identity of identity schema `version` (raw JSON) to
    /// the current identity schema.
    fn upgrade_resource_identity(
        &self,
        type_name: &str,
        _version: i64,
        _raw_json: &[u8],
    ) -> Result<Value, Diagnostics> {
        Err(unknown_type("resource", type_name).into())
    }
    async fn read_resource(&self, req: ReadRequest) -> ReadResponse {
        ReadResponse::failed(unknown_type("resource", &req.type_name).into())
    }
    async fn plan_resource(&self, req: PlanRequest) -> PlanResponse {
        PlanResponse::failed(unknown_type("resource", &req.type_name).into())
    }
    async fn apply_resource(&self, req: ApplyRequest) -> ApplyResponse {
        ApplyResponse::failed(unknown_type("resource", &req.type_name).into())
    }
    async fn import_resource(
        &self,
        type_name: &str,
        _target: ImportTarget,
    ) -> Result<Vec<Imported>, Diagnostics> {
        Err(unknown_type("resource", type_name).into())
    }

    fn validate_ephemeral(&self, type_name: &str, _config: &Value) -> Diagnostics {
        unknown_type("ephemeral resource", type_name).into()
    }
    async fn open_ephemeral(&self, type_name: &str, _config: Value) -> Result<Opened, Diagnostics> {
        Err(unknown_type("ephemeral resource", type_name).into())
    }
    async fn renew_ephemeral(
        &self,
        type_name: &str,
        _private: Vec<u8>,
    ) -> Result<Renewed, Diagnostics> {
        Err(unknown_type("ephemeral resource", type_name).into())
    }
    async fn close_ephemeral(&self, type_name: &str, _private: Vec<u8>) -> Diagnostics {
        unknown_type("ephemeral resource", type_name).into()
    }

    fn validate_list(&self, type_name: &str, _config: &Value) -> Diagnostics {
        unknown_type("list resource", type_name).into()
    }
    /// Sends every object found to `out`, stopping early when `send`
    /// returns false (Terraform has what it asked for, or went away).
    async fn list_resource(&self, req: ListRequest, out: ListSink) {
        out.send(Listed::failed(
            unknown_type("list resource", &req.type_name).into(),
        ))
        .await;
    }

    /// Action types (Terraform 1.14+: `action` blocks, `terraform apply
    /// -invoke`): the schema of their `config` block.
    fn action_schemas(&self) -> BTreeMap<String, Schema> {
        BTreeMap::new()
    }
    fn validate_action(&self, type_name: &str, _config: &Value) -> Diagnostics {
        unknown_type("action", type_name).into()
    }
    /// What Terraform learns before invoking: errors stop the run.
    async fn plan_action(&self, type_name: &str, _config: Value) -> Diagnostics {
        unknown_type("action", type_name).into()
    }
    /// Runs an action, telling Terraform how it goes through `progress`;
    /// the diagnostics returned complete it.
    async fn invoke_action(
        &self,
        type_name: &str,
        _config: Value,
        _progress: ActionProgress,
    ) -> Diagnostics {
        unknown_type("action", type_name).into()
    }

    /// Terraform asked the provider to stop (Ctrl-C): cancel in-flight work.
    fn stop(&self);
    /// After [`Backend::stop`]: waits (bounded) for the work that must
    /// finish even when stopped, such as an action's cleanup.
    async fn stopped(&self) {}
}

pub struct ReadRequest {
    pub type_name: String,
    pub state: Value,
    pub private: Vec<u8>,
}
pub struct ReadResponse {
    /// Null when the object is gone: Terraform drops it from state.
    pub state: Value,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}
impl ReadResponse {
    pub fn failed(diagnostics: Diagnostics) -> Self {
        ReadResponse {
            state: Value::Null,
            private: Vec::new(),
            diagnostics,
        }
    }
}

pub struct PlanRequest {
    pub type_name: String,
    pub prior_state: Value,
    pub proposed_new_state: Value,
    pub config: Value,
    pub prior_private: Vec<u8>,
}
pub struct PlanResponse {
    pub planned_state: Value,
    pub requires_replace: Vec<Path>,
    pub planned_private: Vec<u8>,
    pub diagnostics: Diagnostics,
}
impl PlanResponse {
    pub fn failed(diagnostics: Diagnostics) -> Self {
        PlanResponse {
            planned_state: Value::Null,
            requires_replace: Vec::new(),
            planned_private: Vec::new(),
            diagnostics,
        }
    }
}

pub struct ApplyRequest {
    pub type_name: String,
    pub prior_state: Value,
    pub planned_state: Value,
    pub config: Value,
    pub planned_private: Vec<u8>,
}
pub struct ApplyResponse {
    /// On failure, the partial state of what exists (Terraform taints it).
    pub new_state: Value,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}
impl ApplyResponse {
    pub fn failed(diagnostics: Diagnostics) -> Self {
        ApplyResponse {
            new_state: Value::Null,
            private: Vec::new(),
            diagnostics,
        }
    }
}

pub struct Imported {
    pub type_name: String,
    pub state: Value,
    pub private: Vec<u8>,
}

/// What `terraform import` names: an id string (`terraform import`,
/// `import { id = ... }`) or, on Terraform 1.12+, an identity object
/// (`import { identity = {...} }`).
#[derive(Clone, Debug, PartialEq)]
pub enum ImportTarget {
    Id(String),
    Identity(Value),
}

/// An opened ephemeral resource: its value (never stored by Terraform),
/// when to renew it, and private data Terraform hands back on renew and
/// close (never a secret).
pub struct Opened {
    pub result: Value,
    pub renew_at: Option<SystemTime>,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

pub struct Renewed {
    pub renew_at: Option<SystemTime>,
    pub private: Vec<u8>,
    pub diagnostics: Diagnostics,
}

pub struct ListRequest {
    pub type_name: String,
    /// The list block's `config`; null when the block is left out.
    pub config: Value,
    pub include_resource_object: bool,
    /// At most this many results (Terraform stops reading there).
    pub limit: i64,
}

/// One object found by a list resource.
pub struct Listed {
    pub identity: Value,
    pub display_name: String,
    /// The full resource object, when Terraform asked for it.
    pub state: Option<Value>,
    pub diagnostics: Diagnostics,
}

impl Listed {
    /// An event that carries only diagnostics (an error ends the listing).
    pub fn failed(diagnostics: Diagnostics) -> Self {
        Listed {
            identity: Value::Null,
            display_name: String::new(),
            state: None,
            diagnostics,
        }
    }
}

/// Where a list resource streams what it finds: each item is encoded with
/// the resource's identity and object types and sent to Terraform at once.
pub struct ListSink {
    tx: mpsc::Sender<Result<pb::list_resource::Event, Status>>,
    identity_type: Type,
    resource_type: Type,
    include_resource_object: bool,
    /// Results Terraform still takes.
    remaining: AtomicI64,
}

impl ListSink {
    /// Whether Terraform still wants results.
    pub fn wants_more(&self) -> bool {
        self.remaining.load(Ordering::SeqCst) > 0 && !self.tx.is_closed()
    }

    /// Sends one item; false when Terraform wants no more.
    pub async fn send(&self, item: Listed) -> bool {
        let is_result = !item.identity.is_null();
        if is_result && !self.wants_more() {
            return false;
        }
        let event = self.encode(item);
        if self.tx.send(Ok(event)).await.is_err() {
            return false;
        }
        if is_result {
            self.remaining.fetch_sub(1, Ordering::SeqCst);
        }
        self.wants_more()
    }

    fn encode(&self, item: Listed) -> pb::list_resource::Event {
        let mut diagnostics = item.diagnostics;
        let identity = if item.identity.is_null() {
            None
        } else {
            match encode(&item.identity, &self.identity_type) {
                Ok(v) => Some(pb::ResourceIdentityData {
                    identity_data: Some(v),
                }),
                Err(d) => {
                    diagnostics.extend(d);
                    None
                }
            }
        };
        let resource_object = match item.state {
            Some(state) if self.include_resource_object => {
                match encode(&state, &self.resource_type) {
                    Ok(v) => Some(v),
                    Err(d) => {
                        diagnostics.extend(d);
                        None
                    }
                }
            }
            _ => None,
        };
        pb::list_resource::Event {
            identity,
            display_name: item.display_name,
            resource_object,
            diagnostic: diagnostics.to_proto(),
        }
    }
}

/// Where an action reports how it goes: each message is a Progress event
/// Terraform prints at once (or, run outside Terraform, a line on stderr).
pub struct ActionProgress {
    tx: Option<mpsc::Sender<Result<pb::invoke_action::Event, Status>>>,
    /// Set once Terraform sent StopProvider: Terraform 1.15 then handles
    /// one more event of an action stream and stops reading it, and
    /// crashes on any event after that ("range function continued
    /// iteration after function for loop body returned false"). So after
    /// a stop no progress is sent, only the Completed event.
    stopping: Arc<AtomicBool>,
}

impl ActionProgress {
    /// Progress for a person at a terminal: one line on stderr each.
    pub fn to_stderr() -> Self {
        ActionProgress {
            tx: None,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends one message; false when Terraform no longer listens.
    pub async fn send(&self, message: impl Into<String>) -> bool {
        let message = message.into();
        let Some(tx) = &self.tx else {
            eprintln!("{message}");
            return true;
        };
        logging::debug(&format!("action progress: {message}"));
        if self.stopping.load(Ordering::SeqCst) {
            return false;
        }
        let event = pb::invoke_action::Event {
            r#type: Some(pb::invoke_action::event::Type::Progress(
                pb::invoke_action::event::Progress { message },
            )),
        };
        tx.send(Ok(event)).await.is_ok()
    }

    /// Resolves when Terraform stops listening (it went away or was
    /// interrupted); never on stderr.
    pub async fn closed(&self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}

pub fn unknown_type(kind: &str, type_name: &str) -> Diagnostic {
    Diagnostic::error(
        format!("Unknown {kind} type {type_name:?}"),
        format!(
            "terraform-provider-idis {} has no {kind} named {type_name:?}.",
            crate::VERSION
        ),
    )
}

/// Decodes a DynamicValue: msgpack normally, JSON where msgpack is empty,
/// null when both are.
pub fn decode(value: Option<&pb::DynamicValue>, ty: &Type) -> Result<Value, Diagnostics> {
    let result = match value {
        Some(v) if !v.msgpack.is_empty() => cty::decode_msgpack(&v.msgpack, ty),
        Some(v) if !v.json.is_empty() => cty::decode_json(&v.json, ty),
        _ => Ok(Value::Null),
    };
    result.map_err(|e| {
        let diagnostic = Diagnostic::error(
            "Invalid value from Terraform",
            format!("The provider could not decode a value Terraform sent: {e}"),
        );
        // Point Terraform at the attribute, when the error is inside one.
        match e.path() {
            path if path.0.is_empty() => diagnostic,
            path => diagnostic.at(path.clone()),
        }
        .into()
    })
}

pub fn encode(value: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostics> {
    encode_with(value, ty, cty::Numbers::Compact)
}

/// A refreshed state, with numbers as decimal text so that Terraform reads
/// an unchanged object back exactly as it reads the stored one (see
/// [`cty::Numbers::DecimalText`]): otherwise every refresh looks like a
/// change to `plan -refresh-only -detailed-exitcode`.
pub fn encode_refreshed(value: &Value, ty: &Type) -> Result<pb::DynamicValue, Diagnostics> {
    encode_with(value, ty, cty::Numbers::DecimalText)
}

fn encode_with(
    value: &Value,
    ty: &Type,
    numbers: cty::Numbers,
) -> Result<pb::DynamicValue, Diagnostics> {
    cty::encode_msgpack_with(value, ty, numbers)
        .map(|msgpack| pb::DynamicValue {
            msgpack,
            json: Vec::new(),
        })
        .map_err(|e| {
            Diagnostic::error(
                "Internal error encoding a value",
                format!("The provider produced a value that does not fit its schema: {e}. This is a bug in terraform-provider-idis."),
            )
            .into()
        })
}

/// Every response message carries its diagnostics in a field of its own.
trait WithDiagnostics: Default {
    fn diagnostics_mut(&mut self) -> &mut Vec<pb::Diagnostic>;
}

macro_rules! with_diagnostics {
    ($($t:path),* $(,)?) => {
        $(impl WithDiagnostics for $t {
            fn diagnostics_mut(&mut self) -> &mut Vec<pb::Diagnostic> {
                &mut self.diagnostics
            }
        })*
    };
}

with_diagnostics!(
    pb::get_metadata::Response,
    pb::get_provider_schema::Response,
    pb::prepare_provider_config::Response,
    pb::validate_resource_type_config::Response,
    pb::validate_data_source_config::Response,
    pb::validate_ephemeral_resource_config::Response,
    pb::upgrade_resource_state::Response,
    pb::configure::Response,
    pb::read_resource::Response,
    pb::plan_resource_change::Response,
    pb::apply_resource_change::Response,
    pb::import_resource_state::Response,
    pb::move_resource_state::Response,
    pb::read_data_source::Response,
    pb::open_ephemeral_resource::Response,
    pb::renew_ephemeral_resource::Response,
    pb::close_ephemeral_resource::Response,
    pb::get_functions::Response,
    pb::get_resource_identity_schemas::Response,
    pb::upgrade_resource_identity::Response,
    pb::validate_list_resource_config::Response,
    pb::generate_resource_config::Response,
    pb::plan_action::Response,
    pb::validate_action_config::Response,
);

/// Runs one RPC body. Errors become the response's diagnostics; a panic
/// becomes an error diagnostic instead of crossing the gRPC boundary.
async fn answer<R: WithDiagnostics>(
    rpc: &'static str,
    body: impl Future<Output = Result<R, Diagnostics>>,
) -> Result<Response<R>, Status> {
    logging::trace(&format!("{rpc} called"));
    let outcome = AssertUnwindSafe(body).catch_unwind().await;
    let diagnostics = match outcome {
        Ok(Ok(response)) => return Ok(Response::new(response)),
        Ok(Err(diagnostics)) => diagnostics,
        Err(panic) => {
            let message = panic_message(panic.as_ref());
            logging::error(&format!("{rpc} panicked: {message}"));
            Diagnostic::error(
                "Internal error in terraform-provider-idis",
                format!(
                    "{rpc} failed unexpectedly ({message}). Nothing was changed by this call after the failure. \
                     This is a bug: please report it with the output of TF_LOG_PROVIDER=debug."
                ),
            )
            .into()
        }
    };
    let mut response = R::default();
    *response.diagnostics_mut() = diagnostics.to_proto();
    Ok(Response::new(response))
}

pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_string()
    }
}

struct Schemas {
    provider: Schema,
    data_sources: BTreeMap<String, Schema>,
    resources: BTreeMap<String, Schema>,
    identities: BTreeMap<String, IdentitySchema>,
    ephemeral: BTreeMap<String, Schema>,
    lists: BTreeMap<String, Schema>,
    actions: BTreeMap<String, Schema>,
}

/// The gRPC service Terraform talks to.
pub struct ProviderService<B: Backend> {
    backend: Arc<B>,
    schemas: Arc<Schemas>,
    /// StopProvider was called (see [`ActionProgress`]).
    stopping: Arc<AtomicBool>,
}

impl<B: Backend> ProviderService<B> {
    pub fn new(backend: B) -> Self {
        let schemas = Schemas {
            provider: backend.provider_schema(),
            data_sources: backend.data_source_schemas(),
            resources: backend.resource_schemas(),
            identities: backend.identity_schemas(),
            ephemeral: backend.ephemeral_schemas(),
            lists: backend.list_schemas(),
            actions: backend.action_schemas(),
        };
        ProviderService {
            backend: Arc::new(backend),
            schemas: Arc::new(schemas),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    fn data_source(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.schemas
            .data_sources
            .get(type_name)
            .ok_or_else(|| unknown_type("data source", type_name).into())
    }

    fn resource(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.schemas
            .resources
            .get(type_name)
            .ok_or_else(|| unknown_type("resource", type_name).into())
    }

    fn ephemeral(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.schemas
            .ephemeral
            .get(type_name)
            .ok_or_else(|| unknown_type("ephemeral resource", type_name).into())
    }

    fn list(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.schemas
            .lists
            .get(type_name)
            .ok_or_else(|| unknown_type("list resource", type_name).into())
    }

    fn action(&self, type_name: &str) -> Result<&Schema, Diagnostics> {
        self.schemas
            .actions
            .get(type_name)
            .ok_or_else(|| unknown_type("action", type_name).into())
    }

    /// The identity of `state` on the wire, for types that have one. When
    /// the state cannot say yet (a replacing attribute unknown at plan),
    /// the identity of `prior` stands: the apply refuses to change it.
    fn identity_of(
        &self,
        type_name: &str,
        state: &Value,
        prior: &Value,
    ) -> Result<Option<pb::ResourceIdentityData>, Diagnostics> {
        let Some(schema) = self.schemas.identities.get(type_name) else {
            return Ok(None);
        };
        if state.is_null() || !state.is_known() {
            return Ok(None);
        }
        let mut identity = self.backend.identity(type_name, state);
        if !identity.is_wholly_known() && !prior.is_null() {
            identity = self.backend.identity(type_name, prior);
        }
        if identity.is_null() {
            return Ok(None);
        }
        Ok(Some(pb::ResourceIdentityData {
            identity_data: Some(encode(&identity, &schema.value_type())?),
        }))
    }
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let since = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// What the provider declares it supports. Every field is one Terraform
/// 1.11 knows but `generate_resource_config` (5.10), which it does not
/// read: configuration generation stays Terraform's own on every version,
/// so `plan -generate-config-out` writes the same on 1.11 and 1.15.
fn capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        plan_destroy: true,
        get_provider_schema_optional: true,
        move_resource_state: false,
        generate_resource_config: false,
    }
}

fn fail<T>(d: Diagnostic) -> Result<T, Diagnostics> {
    Err(d.into())
}

fn ok_unless_errors(diagnostics: Diagnostics) -> Result<Diagnostics, Diagnostics> {
    if diagnostics.has_errors() {
        Err(diagnostics)
    } else {
        Ok(diagnostics)
    }
}

#[tonic::async_trait]
impl<B: Backend> pb::provider_server::Provider for ProviderService<B> {
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        answer("GetMetadata", async {
            Ok(pb::get_metadata::Response {
                server_capabilities: Some(capabilities()),
                data_sources: self
                    .schemas
                    .data_sources
                    .keys()
                    .map(|name| pb::get_metadata::DataSourceMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                resources: self
                    .schemas
                    .resources
                    .keys()
                    .map(|name| pb::get_metadata::ResourceMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                ephemeral_resources: self
                    .schemas
                    .ephemeral
                    .keys()
                    .map(|name| pb::get_metadata::EphemeralMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                list_resources: self
                    .schemas
                    .lists
                    .keys()
                    .map(|name| pb::get_metadata::ListResourceMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                actions: self
                    .schemas
                    .actions
                    .keys()
                    .map(|name| pb::get_metadata::ActionMetadata {
                        type_name: name.clone(),
                    })
                    .collect(),
                ..Default::default()
            })
        })
        .await
    }

    async fn get_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        answer("GetProviderSchema", async {
            let to_proto = |m: &BTreeMap<String, Schema>| {
                m.iter().map(|(k, s)| (k.clone(), s.to_proto())).collect()
            };
            Ok(pb::get_provider_schema::Response {
                provider: Some(self.schemas.provider.to_proto()),
                resource_schemas: to_proto(&self.schemas.resources),
                data_source_schemas: to_proto(&self.schemas.data_sources),
                ephemeral_resource_schemas: to_proto(&self.schemas.ephemeral),
                list_resource_schemas: to_proto(&self.schemas.lists),
                action_schemas: self
                    .schemas
                    .actions
                    .iter()
                    .map(|(k, s)| {
                        (
                            k.clone(),
                            pb::ActionSchema {
                                schema: Some(s.to_proto()),
                            },
                        )
                    })
                    .collect(),
                server_capabilities: Some(capabilities()),
                ..Default::default()
            })
        })
        .await
    }

    async fn prepare_provider_config(
        &self,
        req: Request<pb::prepare_provider_config::Request>,
    ) -> Result<Response<pb::prepare_provider_config::Response>, Status> {
        let req = req.into_inner();
        answer("PrepareProviderConfig", async {
            let ty = self.schemas.provider.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            let diagnostics = ok_unless_errors(self.backend.validate_provider(&config))?;
            Ok(pb::prepare_provider_config::Response {
                prepared_config: Some(encode(&config, &ty)?),
                diagnostics: diagnostics.to_proto(),
            })
        })
        .await
    }

    async fn validate_resource_type_config(
        &self,
        req: Request<pb::validate_resource_type_config::Request>,
    ) -> Result<Response<pb::validate_resource_type_config::Response>, Status> {
        let req = req.into_inner();
        answer("ValidateResourceTypeConfig", async {
            let schema = self.resource(&req.type_name)?;
            let config = decode(req.config.as_ref(), &schema.value_type())?;
            Ok(pb::validate_resource_type_config::Response {
                diagnostics: self
                    .backend
                    .validate_resource(&req.type_name, &config)
                    .to_proto(),
            })
        })
        .await
    }

    async fn validate_data_source_config(
        &self,
        req: Request<pb::validate_data_source_config::Request>,
    ) -> Result<Response<pb::validate_data_source_config::Response>, Status> {
        let req = req.into_inner();
        answer("ValidateDataSourceConfig", async {
            let schema = self.data_source(&req.type_name)?;
            let config = decode(req.config.as_ref(), &schema.value_type())?;
            Ok(pb::validate_data_source_config::Response {
                diagnostics: self
                    .backend
                    .validate_data_source(&req.type_name, &config)
                    .to_proto(),
            })
        })
        .await
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        answer("UpgradeResourceState", async {
            let schema = self.resource(&req.type_name)?;
            let ty = schema.value_type();
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() && !raw.flatmap.is_empty() {
                return fail(Diagnostic::error(
                    "Unsupported state format",
                    format!("The stored state of this {} is in the legacy flatmap format, which this provider never wrote.", req.type_name),
                ));
            }
            let upgraded = if raw.json.is_empty() {
                Value::Null
            } else {
                self.backend
                    .upgrade_resource_state(&req.type_name, req.version, &raw.json)?
            };
            Ok(pb::upgrade_resource_state::Response {
                upgraded_state: Some(encode(&upgraded, &ty)?),
                diagnostics: Vec::new(),
            })
        })
        .await
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        answer("GetResourceIdentitySchemas", async {
            Ok(pb::get_resource_identity_schemas::Response {
                identity_schemas: self
                    .schemas
                    .identities
                    .iter()
                    .map(|(k, s)| (k.clone(), s.to_proto()))
                    .collect(),
                diagnostics: Vec::new(),
            })
        })
        .await
    }

    async fn upgrade_resource_identity(
        &self,
        req: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        let req = req.into_inner();
        answer("UpgradeResourceIdentity", async {
            let Some(schema) = self.schemas.identities.get(&req.type_name) else {
                return fail(unknown_type("resource identity", &req.type_name));
            };
            let raw = req.raw_identity.unwrap_or_default();
            let upgraded = if raw.json.is_empty() {
                Value::Null
            } else {
                self.backend
                    .upgrade_resource_identity(&req.type_name, req.version, &raw.json)?
            };
            Ok(pb::upgrade_resource_identity::Response {
                upgraded_identity: Some(pb::ResourceIdentityData {
                    identity_data: Some(encode(&upgraded, &schema.value_type())?),
                }),
                diagnostics: Vec::new(),
            })
        })
        .await
    }

    async fn configure(
        &self,
        req: Request<pb::configure::Request>,
    ) -> Result<Response<pb::configure::Response>, Status> {
        let req = req.into_inner();
        answer("ConfigureProvider", async {
            let config = decode(req.config.as_ref(), &self.schemas.provider.value_type())?;
            let validation = ok_unless_errors(self.backend.validate_provider(&config))?;
            let mut diagnostics = self.backend.configure(config, req.terraform_version).await;
            diagnostics.0.splice(0..0, validation.0);
            Ok(pb::configure::Response {
                diagnostics: diagnostics.to_proto(),
            })
        })
        .await
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        answer("ReadResource", async {
            let ty = self.resource(&req.type_name)?.value_type();
            let state = decode(req.current_state.as_ref(), &ty)?;
            let read = self
                .backend
                .read_resource(ReadRequest {
                    type_name: req.type_name.clone(),
                    state,
                    private: req.private,
                })
                .await;
            if read.diagnostics.has_errors() {
                return Err(read.diagnostics);
            }
            Ok(pb::read_resource::Response {
                new_state: Some(encode_refreshed(&read.state, &ty)?),
                diagnostics: read.diagnostics.to_proto(),
                private: read.private,
                deferred: None,
                new_identity: self.identity_of(&req.type_name, &read.state, &Value::Null)?,
            })
        })
        .await
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        answer("PlanResourceChange", async {
            let ty = self.resource(&req.type_name)?.value_type();
            let prior_state = decode(req.prior_state.as_ref(), &ty)?;
            let plan = self
                .backend
                .plan_resource(PlanRequest {
                    type_name: req.type_name.clone(),
                    prior_state: prior_state.clone(),
                    proposed_new_state: decode(req.proposed_new_state.as_ref(), &ty)?,
                    config: decode(req.config.as_ref(), &ty)?,
                    prior_private: req.prior_private,
                })
                .await;
            if plan.diagnostics.has_errors() {
                return Err(plan.diagnostics);
            }
            Ok(pb::plan_resource_change::Response {
                planned_state: Some(encode(&plan.planned_state, &ty)?),
                requires_replace: plan
                    .requires_replace
                    .iter()
                    .map(super::diag::path_to_proto)
                    .collect(),
                planned_private: plan.planned_private,
                diagnostics: plan.diagnostics.to_proto(),
                legacy_type_system: false,
                deferred: None,
                planned_identity: self.identity_of(
                    &req.type_name,
                    &plan.planned_state,
                    &prior_state,
                )?,
            })
        })
        .await
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        answer("ApplyResourceChange", async {
            let ty = self.resource(&req.type_name)?.value_type();
            let prior_state = decode(req.prior_state.as_ref(), &ty)?;
            let applied = self
                .backend
                .apply_resource(ApplyRequest {
                    type_name: req.type_name.clone(),
                    prior_state: prior_state.clone(),
                    planned_state: decode(req.planned_state.as_ref(), &ty)?,
                    config: decode(req.config.as_ref(), &ty)?,
                    planned_private: req.planned_private,
                })
                .await;
            // A failed apply still returns what exists, so Terraform keeps it.
            Ok(pb::apply_resource_change::Response {
                new_identity: self.identity_of(&req.type_name, &applied.new_state, &prior_state)?,
                new_state: Some(encode(&applied.new_state, &ty)?),
                private: applied.private,
                diagnostics: applied.diagnostics.to_proto(),
                legacy_type_system: false,
            })
        })
        .await
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        answer("ImportResourceState", async {
            self.resource(&req.type_name)?;
            let identity = req.identity.as_ref().and_then(|i| i.identity_data.as_ref());
            let target = match (identity, self.schemas.identities.get(&req.type_name)) {
                (Some(data), Some(schema)) if req.id.is_empty() => {
                    ImportTarget::Identity(decode(Some(data), &schema.value_type())?)
                }
                (Some(_), None) if req.id.is_empty() => {
                    return fail(Diagnostic::error(
                        "Import by identity not supported",
                        format!(
                            "{} has no resource identity: import it by id.",
                            req.type_name
                        ),
                    ))
                }
                _ => ImportTarget::Id(req.id.clone()),
            };
            let imported = self.backend.import_resource(&req.type_name, target).await?;
            let mut resources = Vec::new();
            for item in imported {
                let ty = self.resource(&item.type_name)?.value_type();
                resources.push(pb::import_resource_state::ImportedResource {
                    identity: self.identity_of(&item.type_name, &item.state, &Value::Null)?,
                    type_name: item.type_name,
                    state: Some(encode(&item.state, &ty)?),
                    private: item.private,
                });
            }
            Ok(pb::import_resource_state::Response {
                imported_resources: resources,
                ..Default::default()
            })
        })
        .await
    }

    async fn move_resource_state(
        &self,
        req: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        let req = req.into_inner();
        answer("MoveResourceState", async {
            fail(Diagnostic::error(
                "Moving resources is not supported",
                format!(
                    "terraform-provider-idis cannot take over a {} from {}: use `terraform import` instead.",
                    req.source_type_name, req.source_provider_address
                ),
            ))
        })
        .await
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        answer("ReadDataSource", async {
            let ty = self.data_source(&req.type_name)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            let state = self
                .backend
                .read_data_source(&req.type_name, config)
                .await?;
            Ok(pb::read_data_source::Response {
                state: Some(encode(&state, &ty)?),
                ..Default::default()
            })
        })
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let req = req.into_inner();
        answer("ValidateEphemeralResourceConfig", async {
            let ty = self.ephemeral(&req.type_name)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            Ok(pb::validate_ephemeral_resource_config::Response {
                diagnostics: self
                    .backend
                    .validate_ephemeral(&req.type_name, &config)
                    .to_proto(),
            })
        })
        .await
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        answer("OpenEphemeralResource", async {
            let ty = self.ephemeral(&req.type_name)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            let diagnostics =
                ok_unless_errors(self.backend.validate_ephemeral(&req.type_name, &config))?;
            if !config.is_wholly_known() {
                // Not yet known (planning): the value is known after apply.
                return Ok(pb::open_ephemeral_resource::Response {
                    result: Some(encode(&Value::Unknown, &ty)?),
                    diagnostics: diagnostics.to_proto(),
                    ..Default::default()
                });
            }
            let mut opened = self.backend.open_ephemeral(&req.type_name, config).await?;
            if opened.diagnostics.has_errors() {
                return Err(opened.diagnostics);
            }
            opened.diagnostics.0.splice(0..0, diagnostics.0);
            Ok(pb::open_ephemeral_resource::Response {
                diagnostics: opened.diagnostics.to_proto(),
                renew_at: opened.renew_at.map(timestamp),
                result: Some(encode(&opened.result, &ty)?),
                private: Some(opened.private),
                deferred: None,
            })
        })
        .await
    }

    async fn renew_ephemeral_resource(
        &self,
        req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        answer("RenewEphemeralResource", async {
            self.ephemeral(&req.type_name)?;
            let renewed = self
                .backend
                .renew_ephemeral(&req.type_name, req.private.unwrap_or_default())
                .await?;
            Ok(pb::renew_ephemeral_resource::Response {
                diagnostics: renewed.diagnostics.to_proto(),
                renew_at: renewed.renew_at.map(timestamp),
                private: Some(renewed.private),
            })
        })
        .await
    }

    async fn close_ephemeral_resource(
        &self,
        req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        answer("CloseEphemeralResource", async {
            self.ephemeral(&req.type_name)?;
            Ok(pb::close_ephemeral_resource::Response {
                diagnostics: self
                    .backend
                    .close_ephemeral(&req.type_name, req.private.unwrap_or_default())
                    .await
                    .to_proto(),
            })
        })
        .await
    }

    async fn validate_list_resource_config(
        &self,
        req: Request<pb::validate_list_resource_config::Request>,
    ) -> Result<Response<pb::validate_list_resource_config::Response>, Status> {
        let req = req.into_inner();
        answer("ValidateListResourceConfig", async {
            let ty = self.list(&req.type_name)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            Ok(pb::validate_list_resource_config::Response {
                diagnostics: self
                    .backend
                    .validate_list(&req.type_name, &config)
                    .to_proto(),
            })
        })
        .await
    }

    type ListResourceStream =
        Pin<Box<dyn Stream<Item = Result<pb::list_resource::Event, Status>> + Send + 'static>>;

    /// Streams what the backend finds. The backend runs in a task of its
    /// own that ends when Terraform stops reading; a panic in it becomes
    /// an error event, like any other RPC's.
    async fn list_resource(
        &self,
        req: Request<pb::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        logging::trace("ListResource called");
        let req = req.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let prepared = (|| {
            let config_ty = self.list(&req.type_name)?.value_type();
            let resource_type = self.resource(&req.type_name)?.value_type();
            let Some(identity) = self.schemas.identities.get(&req.type_name) else {
                return fail(unknown_type("resource identity", &req.type_name));
            };
            let config = decode(req.config.as_ref(), &config_ty)?;
            Ok((config, resource_type, identity.value_type()))
        })();
        let sink = |resource_type, identity_type| ListSink {
            tx: tx.clone(),
            identity_type,
            resource_type,
            include_resource_object: req.include_resource_object,
            remaining: AtomicI64::new(if req.limit > 0 { req.limit } else { i64::MAX }),
        };
        match prepared {
            Err(diagnostics) => {
                let out = sink(Type::Dynamic, Type::Dynamic);
                tokio::spawn(async move {
                    out.send(Listed::failed(diagnostics)).await;
                });
            }
            Ok((config, resource_type, identity_type)) => {
                let out = sink(resource_type, identity_type);
                let panic_tx = tx.clone();
                let backend = self.backend.clone();
                let request = ListRequest {
                    type_name: req.type_name.clone(),
                    config,
                    include_resource_object: req.include_resource_object,
                    limit: req.limit,
                };
                tokio::spawn(async move {
                    let work = AssertUnwindSafe(backend.list_resource(request, out)).catch_unwind();
                    if let Err(panic) = work.await {
                        let message = panic_message(panic.as_ref());
                        logging::error(&format!("ListResource panicked: {message}"));
                        let diagnostics: Diagnostics = Diagnostic::error(
                            "Internal error in terraform-provider-idis",
                            format!(
                                "ListResource failed unexpectedly ({message}). This is a bug: please report it with the output of TF_LOG_PROVIDER=debug."
                            ),
                        )
                        .into();
                        let _ = panic_tx
                            .send(Ok(pb::list_resource::Event {
                                diagnostic: diagnostics.to_proto(),
                                ..Default::default()
                            }))
                            .await;
                    }
                });
            }
        }
        drop(tx);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn generate_resource_config(
        &self,
        req: Request<pb::generate_resource_config::Request>,
    ) -> Result<Response<pb::generate_resource_config::Response>, Status> {
        let name = req.into_inner().type_name;
        answer("GenerateResourceConfig", async {
            fail(Diagnostic::error(
                "Configuration generation is Terraform's",
                format!("terraform-provider-idis does not declare generate_resource_config, so Terraform writes the configuration of {name} itself; this call was not expected."),
            ))
        })
        .await
    }

    async fn validate_action_config(
        &self,
        req: Request<pb::validate_action_config::Request>,
    ) -> Result<Response<pb::validate_action_config::Response>, Status> {
        let req = req.into_inner();
        answer("ValidateActionConfig", async {
            let ty = self.action(&req.type_name)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            Ok(pb::validate_action_config::Response {
                diagnostics: self
                    .backend
                    .validate_action(&req.type_name, &config)
                    .to_proto(),
            })
        })
        .await
    }

    async fn plan_action(
        &self,
        req: Request<pb::plan_action::Request>,
    ) -> Result<Response<pb::plan_action::Response>, Status> {
        let req = req.into_inner();
        answer("PlanAction", async {
            let ty = self.action(&req.action_type)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            let diagnostics =
                ok_unless_errors(self.backend.plan_action(&req.action_type, config).await)?;
            Ok(pb::plan_action::Response {
                diagnostics: diagnostics.to_proto(),
                deferred: None,
            })
        })
        .await
    }

    type InvokeActionStream =
        Pin<Box<dyn Stream<Item = Result<pb::invoke_action::Event, Status>> + Send + 'static>>;

    /// Streams the action's progress, then one Completed event. The action
    /// runs in a task of its own: when Terraform stops reading (Ctrl-C),
    /// it is not dropped mid-way but sees the stream closed and finishes
    /// (an action cleans up what it made before it ends).
    async fn invoke_action(
        &self,
        req: Request<pb::invoke_action::Request>,
    ) -> Result<Response<Self::InvokeActionStream>, Status> {
        logging::trace("InvokeAction called");
        let req = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let completed = |diagnostics: Diagnostics| pb::invoke_action::Event {
            r#type: Some(pb::invoke_action::event::Type::Completed(
                pb::invoke_action::event::Completed {
                    diagnostics: diagnostics.to_proto(),
                },
            )),
        };
        let prepared = (|| {
            let ty = self.action(&req.action_type)?.value_type();
            let config = decode(req.config.as_ref(), &ty)?;
            ok_unless_errors(self.backend.validate_action(&req.action_type, &config))?;
            Ok(config)
        })();
        match prepared {
            Err(diagnostics) => {
                let _ = tx.try_send(Ok(completed(diagnostics)));
            }
            Ok(config) => {
                let backend = self.backend.clone();
                let progress = ActionProgress {
                    tx: Some(tx.clone()),
                    stopping: self.stopping.clone(),
                };
                let stopping = self.stopping.clone();
                let done = tx.clone();
                let type_name = req.action_type.clone();
                tokio::spawn(async move {
                    let work =
                        AssertUnwindSafe(backend.invoke_action(&type_name, config, progress))
                            .catch_unwind();
                    let diagnostics = match work.await {
                        Ok(d) => d,
                        Err(panic) => {
                            let message = panic_message(panic.as_ref());
                            logging::error(&format!("InvokeAction panicked: {message}"));
                            Diagnostic::error(
                                "Internal error in terraform-provider-idis",
                                format!(
                                    "InvokeAction {type_name} failed unexpectedly ({message}). This is a bug: please report it with the output of TF_LOG_PROVIDER=debug."
                                ),
                            )
                            .into()
                        }
                    };
                    if stopping.load(Ordering::SeqCst) {
                        // After StopProvider Terraform handles one more
                        // event before it stops reading: the outcome.
                        for d in &diagnostics.0 {
                            logging::info(&format!(
                                "InvokeAction {type_name} after StopProvider: {}: {}",
                                d.summary, d.detail
                            ));
                        }
                    }
                    let _ = done.send(Ok(completed(diagnostics))).await;
                });
            }
        }
        drop(tx);
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        answer("GetFunctions", async {
            Ok(pb::get_functions::Response::default())
        })
        .await
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let name = req.into_inner().name;
        Ok(Response::new(pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text: format!("terraform-provider-idis has no function named {name:?}"),
                function_argument: None,
            }),
        }))
    }

    async fn stop(
        &self,
        _req: Request<pb::stop::Request>,
    ) -> Result<Response<pb::stop::Response>, Status> {
        logging::info("StopProvider: cancelling in-flight operations");
        self.stopping.store(true, Ordering::SeqCst);
        let backend = self.backend.clone();
        let error = match std::panic::catch_unwind(AssertUnwindSafe(|| backend.stop())) {
            Ok(()) => String::new(),
            Err(panic) => panic_message(panic.as_ref()),
        };
        // Work that must finish after a stop (an action's cleanup) does so
        // before Terraform hears the provider stopped.
        let _ = AssertUnwindSafe(backend.stopped()).catch_unwind().await;
        Ok(Response::new(pb::stop::Response { error }))
    }
}
