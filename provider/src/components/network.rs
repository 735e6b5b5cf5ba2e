//! network: VPC from the CIDR, public and private subnets in three zones, internet gateway, NAT gateways, route tables, and the security groups of the cluster, database and cache.
//!
//! Every object is found again by the VPC's ownership tags and, inside the
//! VPC, by its deterministic `Name` tag, so a re-run after a killed apply
//! adopts what the first run made instead of duplicating it.
//!
//! # Address plan
//!
//! The VPC block is split into 8 equal blocks, three bits longer than the
//! VPC prefix (a /16 gives eight /19s, a /24 eight /27s), numbered in
//! address order. The private subnet of the i-th zone takes block i
//! (blocks 0..=3), the public subnet of the i-th zone takes block 4 + i
//! (blocks 4..=7). Private subnets carry the pods, databases and caches;
//! public subnets only the NAT gateways and load balancers, and the plan
//! keeps them the same size so that it stays one rule. Should a block be
//! taken by a subnet the provider does not recognise, a free block of the
//! same half is used instead.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_ec2::types::{
    Address, AttributeBooleanValue, DomainType, Filter, InternetGateway, IpPermission, NatGateway,
    NatGatewayState, ResourceType, RouteState, RouteTable, SecurityGroup, Subnet, Tag,
    TagSpecification, UserIdGroupPair, Vpc, VpcAttributeName,
};
use aws_sdk_ec2::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures_util::future::{join_all, try_join_all};
use serde::{Deserialize, Serialize};

use super::describe::{Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts};
use super::{
    aws_error, create_or_adopt, is_not_found, tag_pairs, user_visible_tags, ComponentError, Ctx,
    TAG_COMPONENT, TAG_ENVIRONMENT,
};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::Diagnostic;

mod leftovers;

pub const COMPONENT: &str = "network";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    pub vpc_id: String,
    /// As AWS reports it (drift on the CIDR shows here).
    pub vpc_cidr: String,
    /// Zones of the private subnets, in subnet order.
    pub availability_zones: Vec<String>,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
    pub nat_gateway_per_az: bool,
    pub nat_gateway_ids: Vec<String>,
    /// Elastic IP allocation ids of the NAT gateways.
    pub nat_eip_allocation_ids: Vec<String>,
    pub cluster_security_group_id: String,
    pub database_security_group_id: String,
    pub cache_security_group_id: String,
    /// The VPC's user-visible tags (no ownership or aws:* tags, and not the
    /// provider's own `Name`).
    pub tags: BTreeMap<String, String>,
    /// The attached internet gateway, empty when there is none.
    #[serde(default)]
    pub internet_gateway_id: String,
    /// Out-of-band changes that the other fields cannot show: a deleted
    /// route or association, DNS turned off, a revoked security group rule,
    /// a missing subnet or NAT gateway in one zone. Empty when the network
    /// is whole; `ensure` repairs every entry.
    #[serde(default)]
    pub drift: Vec<String>,
    /// The guards of the network, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------------------
// Description: the `network` block

/// The `network` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// IPv4 CIDR of the VPC, /16 to /24.
    pub vpc_cidr: String,
    /// Exactly three zone names of the region, e.g. us-east-1a..c.
    pub availability_zones: Vec<String>,
    /// One NAT gateway per zone (true, production) or a single shared one.
    pub nat_gateway_per_az: bool,
    /// No NAT gateway at all: the private subnets have no route out (a DR
    /// site's network before promotion). Not an argument of the `network`
    /// block; recorded on the VPC as the tag `idis:nat = none`, so a
    /// reading judges the network by what it was made for.
    #[serde(skip)]
    pub without_nat: bool,
}

/// The VPC tag that says the network has no NAT gateway on purpose.
pub const TAG_NAT: &str = "idis:nat";
const NO_NAT: &str = "none";

/// The computed attributes of the network.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkOutputs {
    pub vpc_id: String,
    pub public_subnet_ids: Vec<String>,
    pub private_subnet_ids: Vec<String>,
}

pub const DEFAULT_VPC_CIDR: &str = "10.0.0.0/16";

/// The network of an environment.
pub struct Network;

/// Zones are chosen by AWS at create (the first three available) and kept
/// afterwards.
fn zones_default(_planned: &Value, prior: &Value) -> Value {
    match prior.get_attr("availability_zones") {
        v @ Value::List(_) => v.clone(),
        _ => Value::Unknown,
    }
}

/// Parses `a.b.c.d/n` strictly (no leading zeros); the address and prefix.
pub fn parse_cidr(s: &str) -> Option<(u32, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    let octets: Vec<u8> = addr
        .split('.')
        .map(|o| {
            if o.is_empty() || o.len() > 3 || (o.len() > 1 && o.starts_with('0')) {
                None
            } else {
                o.parse().ok()
            }
        })
        .collect::<Option<_>>()?;
    if octets.len() != 4 || prefix > 32 {
        return None;
    }
    let ip = u32::from_be_bytes([octets[0], octets[1], octets[2], octets[3]]);
    Some((ip, prefix))
}

fn is_private(ip: u32, prefix: u8) -> bool {
    let within = |net: u32, bits: u8| prefix >= bits && (ip >> (32 - bits)) == (net >> (32 - bits));
    within(0x0A00_0000, 8) || within(0xAC10_0000, 12) || within(0xC0A8_0000, 16)
}

/// What is wrong with a VPC CIDR, if anything.
pub fn cidr_problem(cidr: &str) -> Option<&'static str> {
    match parse_cidr(cidr) {
        None => Some("use an IPv4 CIDR block such as \"10.0.0.0/16\""),
        Some((_, prefix)) if !(16..=24).contains(&prefix) => Some(
            "the VPC needs a prefix from /16 (largest AWS allows) to /24 (smallest that holds six subnets)",
        ),
        Some((ip, prefix)) if ip & !(u32::MAX << (32 - prefix)) != 0 => {
            Some("the address has host bits set; use the network address of the block")
        }
        Some((ip, prefix)) if !is_private(ip, prefix) => {
            Some("use a private range (10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
        }
        Some(_) => None,
    }
}

impl Component for Network {
    const NAME: &'static str = COMPONENT;

    async fn find(ctx: &Ctx) -> Result<Option<NetworkState>, ComponentError> {
        find(ctx).await
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &NetworkSpec,
        _built: &super::Observed,
    ) -> Result<NetworkState, ComponentError> {
        ensure(ctx, spec).await
    }

    /// The nodes reach the database and the cache through the security
    /// group EKS made with the cluster: let it in once it exists.
    const FOLLOW_UP_AFTER: &'static [&'static str] = &[super::cluster::COMPONENT];

    async fn follow_up(
        ctx: &Ctx,
        _built: &super::Observed,
    ) -> Result<Option<NetworkState>, ComponentError> {
        admit_cluster(ctx).await.map(Some)
    }

    async fn delete(ctx: &Ctx, _spec: &NetworkSpec) -> Result<Vec<String>, ComponentError> {
        delete(ctx).await
    }

    /// What the cluster left in the VPC with deletion protection would
    /// stop the network's deletion at the very end.
    async fn refuse_destroy(ctx: &Ctx) -> Option<Diagnostic> {
        match check_deletable(ctx).await {
            Ok(()) => None,
            Err(e @ ComponentError::Conflict { .. }) => Some(Diagnostic::error(
                "Destroy refused: a load balancer in the VPC has deletion protection",
                format!("{e}. Nothing was deleted."),
            )),
            Err(e) => Some(e.to_diagnostic()),
        }
    }
    const DOC: &'static str = "The VPC: public and private subnets in three availability zones, internet gateway, NAT, route tables, security groups.";
    type Spec = NetworkSpec;
    type State = NetworkState;
    type Outputs = NetworkOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "vpc_cidr",
                Type::String,
                Default::Str(DEFAULT_VPC_CIDR),
                format!("IPv4 CIDR of the VPC, /16 to /24, carved into 3 private and 3 public subnets. Default `{DEFAULT_VPC_CIDR}`."),
            )
            .replacing(),
            Setting::new(
                "availability_zones",
                Type::list(Type::String),
                Default::Derived(zones_default),
                "Exactly three availability zones of the region. Default: the first three available zones, chosen at create.".into(),
            )
            .replacing(),
            Setting::new(
                "nat_gateway_per_az",
                Type::Bool,
                Default::Bool(true),
                "One NAT gateway per zone (true), or one shared NAT gateway (false, cheaper, not zone-redundant). Default `true`.".into(),
            ),
        ]
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new("vpc_id", Type::String, "VPC id."),
            Output::new(
                "public_subnet_ids",
                Type::list(Type::String),
                "Public subnet ids, in zone order.",
            ),
            Output::new(
                "private_subnet_ids",
                Type::list(Type::String),
                "Private subnet ids, in zone order.",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    fn check(config: &Value) -> Vec<Problem> {
        let block = config.get_attr(COMPONENT);
        let mut problems = Vec::new();
        let cidr = block.get_attr("vpc_cidr");
        if let Some(problem) = cidr.as_str().and_then(cidr_problem) {
            problems.push(Problem::at("vpc_cidr", cidr, problem));
        }
        let zones_value = block.get_attr("availability_zones");
        if let Some(zones) = zones_value.as_strings() {
            let distinct: BTreeSet<&String> = zones.iter().collect();
            if zones.len() != 3 || distinct.len() != 3 {
                problems.push(Problem::at(
                    "availability_zones",
                    zones_value,
                    "list exactly three different availability zones",
                ));
            }
            if let Some(region) = config.get_attr("region").as_str() {
                if let Some(bad) = zones.iter().find(|z| !z.starts_with(region)) {
                    problems.push(Problem::at(
                        "availability_zones",
                        zones_value,
                        format!("zone {bad:?} is not in region {region:?}"),
                    ));
                }
            }
        }
        problems
    }

    fn read(
        state: &NetworkState,
        _stored: &NetworkSpec,
        _prior: &Value,
    ) -> Reading<NetworkSpec, NetworkOutputs> {
        Reading {
            settings: NetworkSpec {
                vpc_cidr: state.vpc_cidr.clone(),
                availability_zones: state.availability_zones.clone(),
                nat_gateway_per_az: state.nat_gateway_per_az,
                without_nat: false,
            },
            outputs: NetworkOutputs {
                vpc_id: state.vpc_id.clone(),
                public_subnet_ids: state.public_subnet_ids.clone(),
                private_subnet_ids: state.private_subnet_ids.clone(),
            },
            verdicts: state.verdicts.clone(),
        }
    }
}

const VPC_DNS: usize = 0;
const SUBNETS: usize = 1;
const INTERNET_GATEWAY: usize = 2;
const NAT_GATEWAYS: usize = 3;
const ROUTE_TABLES: usize = 4;
const SECURITY_GROUPS_GUARD: usize = 5;
const TAGS: usize = 6;

/// What the provider makes of the network without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "vpc_dns",
        "DNS resolution and hostnames on",
        "The VPC resolves DNS and gives instances DNS hostnames (EKS, RDS and ElastiCache endpoints need both).",
    ),
    Guard::new(
        "subnets",
        "private and public subnet in every zone",
        "Each zone has its private subnet and its public subnet; public subnets map public IPs on launch, private ones do not.",
    ),
    Guard::new(
        "internet_gateway",
        "attached",
        "The environment's internet gateway is attached to the VPC.",
    ),
    Guard::new(
        "nat_gateways",
        "available where nat_gateway_per_az puts them",
        "A NAT gateway is available in every zone (`nat_gateway_per_az = true`) or in one.",
    ),
    Guard::new(
        "route_tables",
        "default routes and associations as made",
        "The public table sends 0.0.0.0/0 to the internet gateway, each private table to its zone's NAT gateway; every subnet is associated with its table; no other routes (the VPC's local route, VPC gateway endpoint routes and propagated routes are not judged).",
    ),
    Guard::new(
        "security_groups",
        "only the rules the provider makes",
        "The cluster, database and cache groups exist with exactly their rules: the database lets tcp/5432 and the cache tcp/6379 in from the security group EKS makes for the cluster (the group its managed nodes, and so the pods, run with), nothing else; every group lets all traffic out (as AWS makes a group).",
    ),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "Every object of the network carries `tags`, the provider's `default_tags`, the ownership tags and its `Name`. Tags others add are left alone.",
    ),
];

// ---------------------------------------------------------------------------
// Address plan

/// An IPv4 network: address with host bits zero, and prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Cidr {
    network: u32,
    prefix: u8,
}

impl Ipv4Cidr {
    pub fn parse(text: &str) -> Result<Ipv4Cidr, String> {
        let bad = || format!("{text:?} is not an IPv4 CIDR block; expected a.b.c.d/n");
        let (addr, prefix) = text.trim().split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
        let network = u32::from(addr);
        let cidr = Ipv4Cidr { network, prefix };
        if network & !cidr.mask() != 0 {
            return Err(format!(
                "{text:?} has host bits set; its network is {}/{prefix}",
                Ipv4Addr::from(network & cidr.mask())
            ));
        }
        Ok(cidr)
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The `2^bits` equal blocks `bits` longer than this one, in address order.
    fn split(self, bits: u8) -> Vec<Ipv4Cidr> {
        let prefix = self.prefix + bits;
        let size = 1u64 << (32 - u32::from(prefix));
        (0..(1u64 << bits))
            .map(|i| Ipv4Cidr {
                network: (u64::from(self.network) + i * size) as u32,
                prefix,
            })
            .collect()
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// The subnet blocks of a VPC (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetPlan {
    /// Blocks 0..=3, for the private subnets of zones 1..=4.
    pub private: Vec<String>,
    /// Blocks 4..=7, for the public subnets of zones 1..=4.
    pub public: Vec<String>,
}

/// Carves `vpc_cidr` into the eight subnet blocks. The VPC may be /16 to
/// /25 (AWS's smallest subnet is a /28).
pub fn subnet_plan(vpc_cidr: &str) -> Result<SubnetPlan, String> {
    let vpc = Ipv4Cidr::parse(vpc_cidr)?;
    if !(16..=25).contains(&vpc.prefix) {
        return Err(format!(
            "vpc_cidr {vpc_cidr:?} is a /{}; use a /16 to /25 so that it splits into eight subnets of at least /28",
            vpc.prefix
        ));
    }
    let blocks: Vec<String> = vpc.split(3).iter().map(Ipv4Cidr::to_string).collect();
    Ok(SubnetPlan {
        private: blocks[..4].to_vec(),
        public: blocks[4..].to_vec(),
    })
}

fn same_cidr(a: &str, b: &str) -> bool {
    match (Ipv4Cidr::parse(a), Ipv4Cidr::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.trim() == b.trim(),
    }
}

/// Sort key of a subnet: its network address.
fn cidr_key(subnet: &Subnet) -> (u32, String) {
    let cidr = subnet.cidr_block().unwrap_or_default();
    let network = Ipv4Cidr::parse(cidr).map(|c| c.network).unwrap_or(u32::MAX);
    (network, subnet.subnet_id().unwrap_or_default().to_string())
}

// ---------------------------------------------------------------------------
// Names and tags

const ANYWHERE: &str = "0.0.0.0/0";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Tier {
    Private,
    Public,
}

impl Tier {
    fn as_str(self) -> &'static str {
        match self {
            Tier::Private => "private",
            Tier::Public => "public",
        }
    }
}

/// The security groups and the port each one opens to the cluster group.
const CLUSTER: &str = "cluster";
const SECURITY_GROUPS: [(&str, Option<i32>); 3] = [
    (CLUSTER, None),
    ("database", Some(5432)),
    ("cache", Some(6379)),
];

/// The deterministic `Name` of every object of the network.
struct Names {
    prefix: String,
}

impl Names {
    fn new(ctx: &Ctx) -> Names {
        Names {
            prefix: ctx.prefix(),
        }
    }
    fn vpc(&self) -> String {
        self.prefix.clone()
    }
    fn subnet(&self, tier: Tier, az: &str) -> String {
        format!("{}-{}-{az}", self.prefix, tier.as_str())
    }
    fn nat(&self, az: &str) -> String {
        format!("{}-nat-{az}", self.prefix)
    }
    fn public_route_table(&self) -> String {
        format!("{}-public", self.prefix)
    }
    fn private_route_table(&self, az: &str) -> String {
        format!("{}-private-{az}", self.prefix)
    }
    fn security_group(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

fn name_of(tags: &[Tag]) -> Option<&str> {
    tag_value(tags, "Name")
}

fn is_ours(ctx: &Ctx, tags: &[Tag]) -> bool {
    tag_value(tags, TAG_ENVIRONMENT) == Some(ctx.env.as_str())
        && tag_value(tags, TAG_COMPONENT) == Some(COMPONENT)
}

/// The tags of an object named `name`: user tags, ownership tags, Name.
fn desired_tags(ctx: &Ctx, name: &str) -> BTreeMap<String, String> {
    let mut tags = ctx.tags(COMPONENT);
    tags.insert("Name".to_string(), name.to_string());
    tags
}

/// The tags an existing object should have, keeping its Name (if any).
fn desired_tags_keeping_name(ctx: &Ctx, tags: &[Tag]) -> BTreeMap<String, String> {
    match name_of(tags) {
        Some(name) => desired_tags(ctx, name),
        None => ctx.tags(COMPONENT),
    }
}

fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tag_pairs(tags)
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

fn tag_spec(kind: ResourceType, tags: &BTreeMap<String, String>) -> TagSpecification {
    TagSpecification::builder()
        .resource_type(kind)
        .set_tags(Some(ec2_tags(tags)))
        .build()
}

fn lacks_tags(existing: &[Tag], desired: &BTreeMap<String, String>) -> bool {
    desired
        .iter()
        .any(|(k, v)| tag_value(existing, k) != Some(v.as_str()))
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn owned_filters(ctx: &Ctx) -> Vec<Filter> {
    vec![
        filter(&format!("tag:{TAG_ENVIRONMENT}"), &ctx.env),
        filter(&format!("tag:{TAG_COMPONENT}"), COMPONENT),
    ]
}

fn on(value: bool) -> AttributeBooleanValue {
    AttributeBooleanValue::builder().value(value).build()
}

/// "Already gone" answers, beyond the shared ones.
fn absent<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    is_not_found(err)
        || matches!(
            err.code(),
            Some(
                "InvalidNatGatewayID.NotFound"
                    | "InvalidAssociationID.NotFound"
                    | "InvalidAddress.NotFound"
                    | "InvalidAllocationID.NotFound"
                    | "InvalidPermission.NotFound"
                    | "Gateway.NotAttached"
            )
        )
}

/// Answers that clear up by themselves once AWS finishes removing
/// something else (network interfaces of a deleted NAT gateway, EKS or
/// RDS, an address still mapped).
fn still_in_use<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(
        err.code(),
        Some("DependencyViolation" | "InvalidIPAddress.InUse")
    )
}

/// Runs a removal until it succeeds, retrying while AWS answers that
/// something still depends on the object; "not found" counts as done.
async fn remove<T, E, R, F, Fut>(
    ctx: &Ctx,
    what: String,
    action: String,
    mut call: F,
) -> Result<(), ComponentError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, R>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + super::HttpStatus + 'static,
{
    let action = action.as_str();
    ctx.wait_for(COMPONENT, &what, || {
        let attempt = call();
        async move {
            match attempt.await {
                Ok(_) => Ok(Some(())),
                Err(e) if absent(&e) => Ok(Some(())),
                Err(e) if still_in_use(&e) => Ok(None),
                Err(e) => Err(aws_error(COMPONENT, action, e)),
            }
        }
    })
    .await
}

// ---------------------------------------------------------------------------
// Observation

/// Everything of one VPC the component reads, in one concurrent round.
struct Observed {
    vpc_id: String,
    vpc_cidr: String,
    vpc_tags: Vec<Tag>,
    dns_support: bool,
    dns_hostnames: bool,
    subnets: Vec<Subnet>,
    /// Internet gateways tagged for this environment, attached or not.
    igws: Vec<InternetGateway>,
    /// NAT gateways of the VPC, including deleted ones AWS still lists.
    nats: Vec<NatGateway>,
    /// Elastic IPs tagged for this environment (read by ensure and delete).
    eips: Vec<Address>,
    route_tables: Vec<RouteTable>,
    security_groups: Vec<SecurityGroup>,
}

impl Observed {
    /// The VPC says it has no NAT gateway on purpose.
    fn without_nat(&self) -> bool {
        tag_value(&self.vpc_tags, TAG_NAT) == Some(NO_NAT)
    }
}

fn nat_state(nat: &NatGateway) -> Option<&NatGatewayState> {
    nat.state()
}

fn nat_active(nat: &NatGateway) -> bool {
    matches!(
        nat_state(nat),
        Some(NatGatewayState::Pending | NatGatewayState::Available)
    )
}

/// Deleted or failed: holds nothing any more.
fn nat_dead(nat: &NatGateway) -> bool {
    matches!(
        nat_state(nat),
        Some(NatGatewayState::Deleted | NatGatewayState::Failed)
    )
}

fn nat_allocation_ids(nat: &NatGateway) -> Vec<String> {
    nat.nat_gateway_addresses()
        .iter()
        .filter_map(|a| a.allocation_id())
        .map(str::to_string)
        .collect()
}

impl Observed {
    /// The subnet named for `tier` in `az`.
    fn subnet(&self, names: &Names, tier: Tier, az: &str) -> Option<&Subnet> {
        let name = names.subnet(tier, az);
        self.subnets
            .iter()
            .filter(|s| {
                name_of(s.tags()) == Some(name.as_str()) && s.availability_zone() == Some(az)
            })
            .min_by_key(|s| cidr_key(s))
    }

    /// The subnets of `tier`, one per zone, in address order.
    fn tier_subnets(&self, names: &Names, tier: Tier) -> Vec<&Subnet> {
        let zones: BTreeSet<&str> = self
            .subnets
            .iter()
            .filter_map(|s| s.availability_zone())
            .collect();
        let mut found: Vec<&Subnet> = zones
            .into_iter()
            .filter_map(|az| self.subnet(names, tier, az))
            .collect();
        found.sort_by_key(|s| cidr_key(s));
        found
    }

    /// Our NAT gateways that are pending or available.
    fn active_nats<'a>(&'a self, ctx: &'a Ctx) -> impl Iterator<Item = &'a NatGateway> + 'a {
        self.nats
            .iter()
            .filter(move |n| nat_active(n) && is_ours(ctx, n.tags()))
    }

    /// Our Elastic IPs that nothing live uses: unassociated, or still
    /// bound to the interface of a NAT gateway that is gone (moto keeps
    /// that binding after DeleteNatGateway; AWS drops it).
    fn free_eips(&self) -> Vec<&Address> {
        let dead: BTreeSet<&str> = self
            .nats
            .iter()
            .filter(|n| nat_dead(n))
            .flat_map(|n| n.nat_gateway_addresses())
            .filter_map(|a| a.network_interface_id())
            .collect();
        self.eips
            .iter()
            .filter(|a| a.allocation_id().is_some())
            .filter(|a| {
                a.association_id().is_none()
                    || a.network_interface_id()
                        .is_some_and(|eni| dead.contains(eni))
            })
            .collect()
    }

    /// The zone of a NAT gateway, from its subnet.
    fn nat_zone(&self, nat: &NatGateway) -> Option<&str> {
        let subnet = nat.subnet_id()?;
        self.subnets
            .iter()
            .find(|s| s.subnet_id() == Some(subnet))
            .and_then(|s| s.availability_zone())
    }

    /// Our internet gateway attached to the VPC.
    fn attached_igw(&self) -> Option<&InternetGateway> {
        self.igws.iter().find(|g| {
            g.attachments()
                .iter()
                .any(|a| a.vpc_id() == Some(self.vpc_id.as_str()) && attachment_live(a))
        })
    }

    fn route_table(&self, name: &str) -> Option<&RouteTable> {
        self.route_tables
            .iter()
            .filter(|t| name_of(t.tags()) == Some(name))
            .min_by_key(|t| t.route_table_id().unwrap_or_default().to_string())
    }

    fn security_group(&self, name: &str) -> Option<&SecurityGroup> {
        self.security_groups
            .iter()
            .find(|g| g.group_name() == Some(name))
    }

    /// The explicit association of `subnet` to a table, if any.
    fn association_of(&self, subnet: &str) -> Option<(&str, &str)> {
        self.route_tables.iter().find_map(|t| {
            t.associations().iter().find_map(|a| {
                if a.subnet_id() == Some(subnet) && a.main() != Some(true) {
                    Some((t.route_table_id()?, a.route_table_association_id()?))
                } else {
                    None
                }
            })
        })
    }
}

fn attachment_live(a: &aws_sdk_ec2::types::InternetGatewayAttachment) -> bool {
    use aws_sdk_ec2::types::AttachmentStatus;
    !matches!(
        a.state(),
        Some(AttachmentStatus::Detached | AttachmentStatus::Detaching)
    )
}

/// The default route of a table, if it is active.
fn default_route_target(table: &RouteTable) -> Option<(Option<&str>, Option<&str>)> {
    table
        .routes()
        .iter()
        .find(|r| r.destination_cidr_block() == Some(ANYWHERE))
        .filter(|r| r.state() != Some(&RouteState::Blackhole))
        .map(|r| (r.gateway_id(), r.nat_gateway_id()))
}

fn has_default_route(table: &RouteTable) -> bool {
    table
        .routes()
        .iter()
        .any(|r| r.destination_cidr_block() == Some(ANYWHERE))
}

fn associated(table: &RouteTable, subnet: &str) -> bool {
    table
        .associations()
        .iter()
        .any(|a| a.subnet_id() == Some(subnet))
}

/// What a create with a lost answer may have made.
#[derive(Clone, Copy)]
enum Unanswered {
    Subnet,
    InternetGateway,
    ElasticIp,
}

/// After a create whose answer was lost: the id of the object of `kind`
/// with this environment's tags and `Name` that is not in use yet (an
/// internet gateway not attached, an Elastic IP not associated), if any.
async fn find_named(
    ctx: &Ctx,
    ec2: &Client,
    kind: Unanswered,
    vpc_id: &str,
    name: &str,
) -> Result<Option<String>, ComponentError> {
    let mut filters = owned_filters(ctx);
    filters.push(filter("tag:Name", name));
    let noun = match kind {
        Unanswered::Subnet => "subnet",
        Unanswered::InternetGateway => "internet gateway",
        Unanswered::ElasticIp => "Elastic IP",
    };
    let what = format!("look up {noun} {name} by its tags");
    let id = match kind {
        Unanswered::Subnet => {
            filters.push(filter("vpc-id", vpc_id));
            ec2.describe_subnets()
                .set_filters(Some(filters))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, what, e))?
                .subnets()
                .iter()
                .find_map(|s| s.subnet_id().map(str::to_string))
        }
        Unanswered::InternetGateway => ec2
            .describe_internet_gateways()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what, e))?
            .internet_gateways()
            .iter()
            .filter(|g| g.attachments().iter().all(|a| !attachment_live(a)))
            .find_map(|g| g.internet_gateway_id().map(str::to_string)),
        Unanswered::ElasticIp => ec2
            .describe_addresses()
            .set_filters(Some(filters))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, what, e))?
            .addresses()
            .iter()
            .filter(|a| a.association_id().is_none())
            .find_map(|a| a.allocation_id().map(str::to_string)),
    };
    Ok(id)
}

async fn find_vpc(ctx: &Ctx, ec2: &Client) -> Result<Option<Vpc>, ComponentError> {
    let out = ec2
        .describe_vpcs()
        .set_filters(Some(owned_filters(ctx)))
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, "look up the VPC by its tags", e))?;
    let mut vpcs: Vec<Vpc> = out.vpcs().to_vec();
    match vpcs.len() {
        0 => Ok(None),
        1 => Ok(vpcs.pop()),
        _ => Err(ComponentError::Conflict {
            component: COMPONENT,
            message: format!(
                "{} VPCs are tagged {TAG_ENVIRONMENT}={} ({}); keep one, delete the others (or remove their tags), then retry",
                vpcs.len(),
                ctx.env,
                vpcs.iter()
                    .filter_map(|v| v.vpc_id())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

async fn observe(
    ctx: &Ctx,
    ec2: &Client,
    vpc: &Vpc,
    with_addresses: bool,
) -> Result<Observed, ComponentError> {
    let vpc_id = vpc.vpc_id().unwrap_or_default().to_string();
    let in_vpc = || filter("vpc-id", &vpc_id);
    let dns = |attribute: VpcAttributeName| {
        ec2.describe_vpc_attribute()
            .vpc_id(&vpc_id)
            .attribute(attribute)
            .send()
    };
    let addresses = async {
        if !with_addresses {
            return Ok(Vec::new());
        }
        ec2.describe_addresses()
            .set_filters(Some(owned_filters(ctx)))
            .send()
            .await
            .map(|o| o.addresses().to_vec())
            .map_err(|e| aws_error(COMPONENT, "list the NAT gateways' Elastic IPs", e))
    };
    let (support, hostnames, subnets, igws, nats, eips, tables, groups) = tokio::try_join!(
        async {
            dns(VpcAttributeName::EnableDnsSupport)
                .await
                .map_err(|e| aws_error(COMPONENT, format!("read DNS support of VPC {vpc_id}"), e))
        },
        async {
            dns(VpcAttributeName::EnableDnsHostnames)
                .await
                .map_err(|e| aws_error(COMPONENT, format!("read DNS hostnames of VPC {vpc_id}"), e))
        },
        async {
            ec2.describe_subnets()
                .filters(in_vpc())
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("list the subnets of VPC {vpc_id}"), e))
        },
        async {
            ec2.describe_internet_gateways()
                .set_filters(Some(owned_filters(ctx)))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, "list the internet gateways", e))
        },
        async {
            ec2.describe_nat_gateways()
                .filter(in_vpc())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("list the NAT gateways of VPC {vpc_id}"),
                        e,
                    )
                })
        },
        addresses,
        async {
            ec2.describe_route_tables()
                .filters(in_vpc())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("list the route tables of VPC {vpc_id}"),
                        e,
                    )
                })
        },
        async {
            ec2.describe_security_groups()
                .filters(in_vpc())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("list the security groups of VPC {vpc_id}"),
                        e,
                    )
                })
        },
    )?;
    Ok(Observed {
        vpc_cidr: vpc.cidr_block().unwrap_or_default().to_string(),
        vpc_tags: vpc.tags().to_vec(),
        dns_support: support
            .enable_dns_support()
            .and_then(|v| v.value())
            .unwrap_or(false),
        dns_hostnames: hostnames
            .enable_dns_hostnames()
            .and_then(|v| v.value())
            .unwrap_or(false),
        subnets: subnets.subnets().to_vec(),
        igws: igws.internet_gateways().to_vec(),
        nats: nats.nat_gateways().to_vec(),
        eips,
        route_tables: tables.route_tables().to_vec(),
        security_groups: groups.security_groups().to_vec(),
        vpc_id,
    })
}

/// The state a user sees, plus the drift the fields cannot show.
fn state_from(ctx: &Ctx, obs: &Observed) -> NetworkState {
    let names = Names::new(ctx);
    let private = obs.tier_subnets(&names, Tier::Private);
    let zones: Vec<String> = private
        .iter()
        .filter_map(|s| s.availability_zone())
        .map(str::to_string)
        .collect();
    let zone_rank = |az: Option<&str>| {
        az.and_then(|az| zones.iter().position(|z| z == az))
            .unwrap_or(usize::MAX)
    };
    let mut public = obs.tier_subnets(&names, Tier::Public);
    public.sort_by_key(|s| (zone_rank(s.availability_zone()), cidr_key(s)));
    let mut nats: Vec<&NatGateway> = obs.active_nats(ctx).collect();
    nats.sort_by_key(|n| {
        (
            zone_rank(obs.nat_zone(n)),
            n.nat_gateway_id().unwrap_or_default().to_string(),
        )
    });
    let group_id = |role: &str| {
        obs.security_group(&names.security_group(role))
            .and_then(|g| g.group_id())
            .unwrap_or_default()
            .to_string()
    };
    let verdicts = judge(ctx, &names, obs, &nats);
    let mut tags = user_visible_tags(
        obs.vpc_tags
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_string(),
                    t.value().unwrap_or_default().to_string(),
                ))
            })
            .collect(),
    );
    if tags.get("Name") == Some(&names.vpc()) {
        tags.remove("Name");
    }
    NetworkState {
        vpc_id: obs.vpc_id.clone(),
        vpc_cidr: obs.vpc_cidr.clone(),
        availability_zones: zones,
        public_subnet_ids: ids(&public, Subnet::subnet_id),
        private_subnet_ids: ids(&private, Subnet::subnet_id),
        nat_gateway_per_az: nats.len() > 1,
        nat_gateway_ids: ids(&nats, NatGateway::nat_gateway_id),
        nat_eip_allocation_ids: nats.iter().flat_map(|n| nat_allocation_ids(n)).collect(),
        cluster_security_group_id: group_id(CLUSTER),
        database_security_group_id: group_id("database"),
        cache_security_group_id: group_id("cache"),
        tags,
        internet_gateway_id: obs
            .attached_igw()
            .and_then(|g| g.internet_gateway_id())
            .unwrap_or_default()
            .to_string(),
        drift: verdicts
            .failing()
            .flat_map(|(_, problems)| problems.iter().cloned())
            .collect(),
        verdicts,
    }
}

fn ids<T>(items: &[&T], id: fn(&T) -> Option<&str>) -> Vec<String> {
    items
        .iter()
        .filter_map(|i| id(i))
        .map(str::to_string)
        .collect()
}

/// One rule of a security group, flattened: one source or destination.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SgRule {
    ingress: bool,
    /// `tcp`, `udp`, `icmp` or `all`.
    protocol: String,
    ports: Option<(i32, i32)>,
    /// A CIDR, a prefix list, or a security group (by name when it is one
    /// of the VPC's, else by id).
    peer: String,
}

impl SgRule {
    fn text(&self) -> String {
        let ports = match self.ports {
            None => String::new(),
            Some((a, b)) if a == b => format!(" {a}"),
            Some((a, b)) => format!(" {a}-{b}"),
        };
        let (direction, preposition) = if self.ingress {
            ("ingress", "from")
        } else {
            ("egress", "to")
        };
        format!(
            "{direction} {}{ports} {preposition} {}",
            self.protocol, self.peer
        )
    }
}

/// The rules of a group, flattened; group ids named as the VPC names them.
fn sg_rules(group: &SecurityGroup, names_by_id: &BTreeMap<&str, &str>) -> Vec<SgRule> {
    let mut rules = Vec::new();
    for (ingress, permissions) in [
        (true, group.ip_permissions()),
        (false, group.ip_permissions_egress()),
    ] {
        for p in permissions {
            let protocol = match p.ip_protocol().unwrap_or("-1") {
                "-1" | "all" => "all".to_string(),
                "6" => "tcp".to_string(),
                "17" => "udp".to_string(),
                other => other.to_string(),
            };
            let ports = match (protocol.as_str(), p.from_port(), p.to_port()) {
                ("all", _, _) => None,
                (_, Some(a), Some(b)) if !(a == -1 && b == -1) => Some((a, b)),
                _ => None,
            };
            let mut peers: Vec<String> = Vec::new();
            peers.extend(
                p.ip_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ip())
                    .map(str::to_string),
            );
            peers.extend(
                p.ipv6_ranges()
                    .iter()
                    .filter_map(|r| r.cidr_ipv6())
                    .map(str::to_string),
            );
            peers.extend(
                p.prefix_list_ids()
                    .iter()
                    .filter_map(|l| l.prefix_list_id())
                    .map(str::to_string),
            );
            peers.extend(
                p.user_id_group_pairs()
                    .iter()
                    .filter_map(|g| g.group_id())
                    .map(|id| {
                        names_by_id
                            .get(id)
                            .map_or_else(|| id.to_string(), |n| n.to_string())
                    }),
            );
            for peer in peers {
                rules.push(SgRule {
                    ingress,
                    protocol: protocol.clone(),
                    ports,
                    peer,
                });
            }
        }
    }
    rules.sort();
    rules.dedup();
    rules
}

/// The rules the provider gives a group of the environment: every group
/// keeps the egress AWS gives a new group (all traffic out); the database
/// and the cache let their port in from the security group EKS made for
/// the cluster, once there is one. A managed node group without a launch
/// template runs its nodes, and so the pods, with that group, not with the
/// additional groups given to the control plane ("Amazon EKS security
/// group requirements and considerations", EKS User Guide): admitting it
/// is what lets pods reach PostgreSQL and Redis, and nothing else is let
/// in.
fn wanted_rules(role: &str, eks_group: Option<&str>) -> Vec<SgRule> {
    let mut rules = vec![SgRule {
        ingress: false,
        protocol: "all".to_string(),
        ports: None,
        peer: ANYWHERE.to_string(),
    }];
    if let (Some((_, Some(port))), Some(eks)) =
        (SECURITY_GROUPS.iter().find(|(r, _)| *r == role), eks_group)
    {
        rules.push(SgRule {
            ingress: true,
            protocol: "tcp".to_string(),
            ports: Some((*port, *port)),
            peer: eks.to_string(),
        });
    }
    rules.sort();
    rules
}

/// The tag EKS puts on the security group it makes for a cluster.
const EKS_CLUSTER_TAG: &str = "aws:eks:cluster-name";

/// The name of the security group EKS made for this environment's cluster,
/// when it is in the VPC.
fn eks_cluster_group<'a>(names: &Names, obs: &'a Observed) -> Option<&'a str> {
    obs.security_groups
        .iter()
        .find(|g| tag_value(g.tags(), EKS_CLUSTER_TAG) == Some(names.vpc().as_str()))
        .and_then(|g| g.group_name())
}

/// The EC2 permission of one flattened rule; group names of the
/// environment become their ids.
fn ip_permission(rule: &SgRule, ids_by_name: &BTreeMap<String, String>, add: bool) -> IpPermission {
    let mut p = IpPermission::builder().ip_protocol(match rule.protocol.as_str() {
        "all" => "-1",
        other => other,
    });
    if let Some((from, to)) = rule.ports {
        p = p.from_port(from).to_port(to);
    }
    let peer = rule.peer.as_str();
    p = if peer.contains('/') && peer.contains(':') {
        p.ipv6_ranges(
            aws_sdk_ec2::types::Ipv6Range::builder()
                .cidr_ipv6(peer)
                .build(),
        )
    } else if peer.contains('/') {
        p.ip_ranges(aws_sdk_ec2::types::IpRange::builder().cidr_ip(peer).build())
    } else if peer.starts_with("pl-") {
        p.prefix_list_ids(
            aws_sdk_ec2::types::PrefixListId::builder()
                .prefix_list_id(peer)
                .build(),
        )
    } else {
        let id = ids_by_name.get(peer).map_or(peer, String::as_str);
        let pair = UserIdGroupPair::builder().group_id(id);
        // Rules the provider adds say what they are for; a revoke names
        // the rule alone.
        let what = match rule.ports {
            Some((5432, 5432)) => Some("PostgreSQL from the cluster's nodes"),
            Some((6379, 6379)) => Some("Redis from the cluster's nodes"),
            _ => None,
        };
        let pair = match what {
            Some(what) if add && ids_by_name.contains_key(peer) => pair.description(what),
            _ => pair,
        };
        p.user_id_group_pairs(pair.build())
    };
    p.build()
}

/// Rules of a group beyond and short of what the provider makes:
/// (extra, missing).
fn rule_changes(
    group: &SecurityGroup,
    obs: &Observed,
    names: &Names,
    role: &str,
    names_by_id: &BTreeMap<&str, &str>,
) -> (Vec<SgRule>, Vec<SgRule>) {
    let have = sg_rules(group, names_by_id);
    let want = wanted_rules(role, eks_cluster_group(names, obs));
    let extra = have.iter().filter(|r| !want.contains(r)).cloned().collect();
    let missing = want.iter().filter(|r| !have.contains(r)).cloned().collect();
    (extra, missing)
}

/// Routes of a table that nobody asked the provider for: beyond the
/// VPC's `local` route and the default route, and not a route of a VPC
/// gateway endpoint (prefix list) or one a virtual private gateway
/// propagates, which belong to whoever made those.
fn extra_routes(table: &RouteTable) -> Vec<String> {
    extra_route_entries(table)
        .into_iter()
        .map(route_text)
        .collect()
}

fn extra_route_entries(table: &RouteTable) -> Vec<&aws_sdk_ec2::types::Route> {
    table
        .routes()
        .iter()
        .filter(|r| r.gateway_id() != Some("local"))
        .filter(|r| r.destination_cidr_block() != Some(ANYWHERE))
        .filter(|r| r.destination_prefix_list_id().is_none())
        .filter(|r| r.origin().map(|o| o.as_str()) != Some("EnableVgwRoutePropagation"))
        .collect()
}

fn route_text(r: &aws_sdk_ec2::types::Route) -> String {
    {
        {
            let to = r
                .destination_cidr_block()
                .or(r.destination_ipv6_cidr_block())
                .unwrap_or("?");
            let via = r
                .gateway_id()
                .or(r.nat_gateway_id())
                .or(r.transit_gateway_id())
                .or(r.vpc_peering_connection_id())
                .or(r.network_interface_id())
                .or(r.instance_id())
                .unwrap_or("?");
            format!("{to} via {via}")
        }
    }
}

/// An object of the network the provider tags: (what, id, current tags,
/// wanted tags).
type Owned<'a> = (String, String, &'a [Tag], BTreeMap<String, String>);

/// Every object of the network the provider tags, with the tags it gives
/// it.
fn owned_objects<'a>(ctx: &'a Ctx, names: &Names, obs: &'a Observed) -> Vec<Owned<'a>> {
    let mut objects = Vec::new();
    objects.push((
        format!("VPC {}", obs.vpc_id),
        obs.vpc_id.clone(),
        obs.vpc_tags.as_slice(),
        desired_tags(ctx, &names.vpc()),
    ));
    for s in &obs.subnets {
        if let (Some(id), Some(name)) = (s.subnet_id(), name_of(s.tags())) {
            for tier in [Tier::Private, Tier::Public] {
                let az = s.availability_zone().unwrap_or_default();
                if name == names.subnet(tier, az) {
                    objects.push((
                        format!("subnet {name}"),
                        id.to_string(),
                        s.tags(),
                        subnet_tags(ctx, names, tier, az),
                    ));
                }
            }
        }
    }
    for t in &obs.route_tables {
        if let (Some(id), true) = (t.route_table_id(), is_ours(ctx, t.tags())) {
            objects.push((
                format!("route table {}", name_of(t.tags()).unwrap_or(id)),
                id.to_string(),
                t.tags(),
                desired_tags_keeping_name(ctx, t.tags()),
            ));
        }
    }
    for g in &obs.security_groups {
        if let (Some(id), Some(name)) = (g.group_id(), g.group_name()) {
            if SECURITY_GROUPS
                .iter()
                .any(|(role, _)| names.security_group(role) == name)
            {
                objects.push((
                    format!("security group {name}"),
                    id.to_string(),
                    g.tags(),
                    desired_tags(ctx, name),
                ));
            }
        }
    }
    if let Some(g) = obs.attached_igw() {
        if let Some(id) = g.internet_gateway_id() {
            objects.push((
                format!("internet gateway {id}"),
                id.to_string(),
                g.tags(),
                desired_tags(ctx, &names.vpc()),
            ));
        }
    }
    for n in obs.active_nats(ctx) {
        if let Some(id) = n.nat_gateway_id() {
            objects.push((
                format!("NAT gateway {id}"),
                id.to_string(),
                n.tags(),
                desired_tags_keeping_name(ctx, n.tags()),
            ));
        }
    }
    for a in &obs.eips {
        if let Some(id) = a.allocation_id() {
            objects.push((
                format!("Elastic IP {id}"),
                id.to_string(),
                a.tags(),
                desired_tags_keeping_name(ctx, a.tags()),
            ));
        }
    }
    objects
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_string(),
                t.value().unwrap_or_default().to_string(),
            ))
        })
        .collect()
}

/// Judges the network against itself and what the provider makes of it
/// (every zone has both subnets, every table routes where it must, the
/// groups hold exactly their rules, ...). Spec-independent.
fn judge(ctx: &Ctx, names: &Names, obs: &Observed, nats: &[&NatGateway]) -> Verdicts {
    let mut v = Verdicts::new();
    let vpc = &obs.vpc_id;

    let mut dns = Vec::new();
    if !obs.dns_support {
        dns.push(format!("DNS resolution is off on VPC {vpc}"));
    }
    if !obs.dns_hostnames {
        dns.push(format!("DNS hostnames are off on VPC {vpc}"));
    }
    v.judge(&GUARDS[VPC_DNS], dns);

    let private = obs.tier_subnets(names, Tier::Private);
    let public = obs.tier_subnets(names, Tier::Public);
    let zones: BTreeSet<&str> = private
        .iter()
        .chain(public.iter())
        .filter_map(|s| s.availability_zone())
        .collect();
    let mut subnets = Vec::new();
    for az in &zones {
        for tier in [Tier::Private, Tier::Public] {
            if obs.subnet(names, tier, az).is_none() {
                subnets.push(format!("no {} subnet in zone {az}", tier.as_str()));
            }
        }
    }
    for s in &public {
        if s.map_public_ip_on_launch() != Some(true) {
            subnets.push(format!(
                "public subnet {} does not map public IPs on launch",
                s.subnet_id().unwrap_or_default()
            ));
        }
    }
    for s in &private {
        if s.map_public_ip_on_launch() == Some(true) {
            subnets.push(format!(
                "private subnet {} maps public IPs on launch",
                s.subnet_id().unwrap_or_default()
            ));
        }
    }
    v.judge(&GUARDS[SUBNETS], subnets);

    let igw = obs.attached_igw().and_then(|g| g.internet_gateway_id());
    v.judge(
        &GUARDS[INTERNET_GATEWAY],
        igw.is_none()
            .then(|| format!("no internet gateway is attached to VPC {vpc}")),
    );

    let mut nat_problems = Vec::new();
    let without_nat = obs.without_nat();
    if without_nat {
        nat_problems.extend(nats.iter().map(|n| {
            format!(
                "NAT gateway {} runs in a network made without one ({TAG_NAT} = {NO_NAT})",
                n.nat_gateway_id().unwrap_or_default()
            )
        }));
    } else if nats.is_empty() {
        nat_problems.push("no NAT gateway".to_string());
    } else if nats.len() > 1 {
        for s in &public {
            let az = s.availability_zone().unwrap_or_default();
            if !nats.iter().any(|n| obs.nat_zone(n) == Some(az)) {
                nat_problems.push(format!("no NAT gateway in zone {az}"));
            }
        }
    }
    v.judge(&GUARDS[NAT_GATEWAYS], nat_problems);

    let mut routes = Vec::new();
    let table_name = names.public_route_table();
    match obs.route_table(&table_name) {
        None => routes.push(format!("route table {table_name} is missing")),
        Some(table) => {
            if let Some(igw) = igw {
                if default_route_target(table).and_then(|(g, _)| g) != Some(igw) {
                    routes.push(format!(
                        "route table {table_name} does not send {ANYWHERE} to internet gateway {igw}"
                    ));
                }
            }
            for s in &public {
                let id = s.subnet_id().unwrap_or_default();
                if !associated(table, id) {
                    routes.push(format!(
                        "public subnet {id} is not associated with route table {table_name}"
                    ));
                }
            }
            for extra in extra_routes(table) {
                routes.push(format!(
                    "route table {table_name} has an extra route {extra}"
                ));
            }
        }
    }
    for s in &private {
        let az = s.availability_zone().unwrap_or_default();
        let id = s.subnet_id().unwrap_or_default();
        let table_name = names.private_route_table(az);
        let Some(table) = obs.route_table(&table_name) else {
            routes.push(format!("route table {table_name} is missing"));
            continue;
        };
        let expected = match nats {
            [only] => only.nat_gateway_id(),
            _ => nats
                .iter()
                .find(|n| obs.nat_zone(n) == Some(az))
                .and_then(|n| n.nat_gateway_id()),
        };
        if without_nat && has_default_route(table) {
            routes.push(format!(
                "route table {table_name} sends {ANYWHERE} out of a network made without a way out"
            ));
        }
        if let Some(nat) = expected.filter(|_| !without_nat) {
            if default_route_target(table).and_then(|(_, n)| n) != Some(nat) {
                routes.push(format!(
                    "route table {table_name} does not send {ANYWHERE} to NAT gateway {nat}"
                ));
            }
        }
        if !associated(table, id) {
            routes.push(format!(
                "private subnet {id} is not associated with route table {table_name}"
            ));
        }
        for extra in extra_routes(table) {
            routes.push(format!(
                "route table {table_name} has an extra route {extra}"
            ));
        }
    }
    v.judge(&GUARDS[ROUTE_TABLES], routes);

    let names_by_id: BTreeMap<&str, &str> = obs
        .security_groups
        .iter()
        .filter_map(|g| Some((g.group_id()?, g.group_name()?)))
        .collect();
    let mut groups = Vec::new();
    for (role, _) in SECURITY_GROUPS {
        let name = names.security_group(role);
        match obs.security_group(&name) {
            None => groups.push(format!("security group {name} is missing")),
            Some(group) => {
                let (extra, missing) = rule_changes(group, obs, names, role, &names_by_id);
                groups.extend(
                    missing
                        .iter()
                        .map(|r| format!("{name}: missing {}", r.text())),
                );
                groups.extend(extra.iter().map(|r| format!("{name}: extra {}", r.text())));
            }
        }
    }
    v.judge(&GUARDS[SECURITY_GROUPS_GUARD], groups);

    let mut tags = Vec::new();
    for (what, _, current, mut wanted) in owned_objects(ctx, names, obs) {
        if what.starts_with("VPC ") {
            // The VPC's user tags are the resource's `tags`, read back on
            // their own; here only what the provider adds.
            wanted.retain(|k, _| !ctx.user_tags.contains_key(k));
        }
        tags.extend(super::tag_problems(&what, &tag_map(current), &wanted));
    }
    v.judge(&GUARDS[TAGS], tags);
    v
}

/// The region's available availability zones (no Local or Wavelength
/// Zones), sorted: what a network whose zones were left to the provider
/// picks its first three from.
pub async fn available_zones(
    ctx: &Ctx,
) -> Result<
    Vec<String>,
    aws_sdk_ec2::error::SdkError<
        aws_sdk_ec2::operation::describe_availability_zones::DescribeAvailabilityZonesError,
    >,
> {
    let zones = ctx.aws.ec2().describe_availability_zones().send().await?;
    let mut names: Vec<String> = zones
        .availability_zones()
        .iter()
        .filter(|z| z.state().is_none_or(|s| s.as_str() == "available"))
        .filter(|z| z.zone_type().is_none_or(|t| t == "availability-zone"))
        .filter_map(|z| z.zone_name().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

// ---------------------------------------------------------------------------
// find

pub async fn find(ctx: &Ctx) -> Result<Option<NetworkState>, ComponentError> {
    let ec2 = ctx.aws.ec2();
    let Some(vpc) = find_vpc(ctx, &ec2).await? else {
        return Ok(None);
    };
    let obs = observe(ctx, &ec2, &vpc, false).await?;
    Ok(Some(state_from(ctx, &obs)))
}

/// Once the cluster exists: lets the nodes' security group (the one EKS
/// made for the cluster) into the database and the cache, and returns the
/// network as it then is. Run after the cluster, before the edge.
pub async fn admit_cluster(ctx: &Ctx) -> Result<NetworkState, ComponentError> {
    let ec2 = ctx.aws.ec2();
    let vpc = find_vpc(ctx, &ec2)
        .await?
        .ok_or_else(|| conflict(format!("the VPC of environment {} disappeared", ctx.env)))?;
    let names = Names::new(ctx);
    let obs = observe(ctx, &ec2, &vpc, false).await?;
    let changed = AtomicBool::new(false);
    ensure_security_groups(ctx, &ec2, &names, &obs, &changed).await?;
    if changed.load(Ordering::Relaxed) {
        let obs = observe(ctx, &ec2, &vpc, false).await?;
        return Ok(state_from(ctx, &obs));
    }
    Ok(state_from(ctx, &obs))
}

// ---------------------------------------------------------------------------
// ensure

fn conflict(message: String) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message,
    }
}

/// Subnet ids of the spec's zones, in the spec's zone order.
struct SubnetIds {
    private: Vec<String>,
    public: Vec<String>,
}

struct GroupIds {
    cluster: String,
    database: String,
    cache: String,
}

pub async fn ensure(ctx: &Ctx, spec: &NetworkSpec) -> Result<NetworkState, ComponentError> {
    let plan = subnet_plan(&spec.vpc_cidr).map_err(conflict)?;
    let zones = &spec.availability_zones;
    let distinct: BTreeSet<&String> = zones.iter().collect();
    if zones.is_empty() || zones.len() > 4 || distinct.len() != zones.len() {
        return Err(conflict(format!(
            "availability_zones must name one to four distinct zones, got {zones:?}"
        )));
    }
    let ec2 = ctx.aws.ec2();
    let names = Names::new(ctx);
    let changed = AtomicBool::new(false);

    let vpc = match find_vpc(ctx, &ec2).await? {
        Some(vpc) => {
            let cidr = vpc.cidr_block().unwrap_or_default();
            if !same_cidr(cidr, &spec.vpc_cidr) {
                return Err(conflict(format!(
                    "VPC {} has CIDR {cidr} but vpc_cidr is {}; a VPC's CIDR cannot change in place, so the network must be replaced (destroy and re-create the environment, or set vpc_cidr back to {cidr})",
                    vpc.vpc_id().unwrap_or_default(),
                    spec.vpc_cidr
                )));
            }
            vpc
        }
        None => {
            changed.store(true, Ordering::Relaxed);
            create_vpc(ctx, &ec2, &names, &spec.vpc_cidr).await?
        }
    };
    let obs = observe(ctx, &ec2, &vpc, true).await?;

    // Subnets cannot move between zones: a zone dropped from the spec
    // would need its subnets (and what runs in them) replaced.
    for tier in [Tier::Private, Tier::Public] {
        for s in obs.tier_subnets(&names, tier) {
            let az = s.availability_zone().unwrap_or_default();
            if !zones.iter().any(|z| z == az) {
                return Err(conflict(format!(
                    "{} subnet {} is in zone {az}, which availability_zones {zones:?} no longer lists; subnets cannot move between zones, so the network must be replaced (or put {az} back)",
                    tier.as_str(),
                    s.subnet_id().unwrap_or_default()
                )));
            }
        }
    }

    ctx.check_cancelled(COMPONENT, "building the network")?;
    let (_, subnets, igw, _groups) = tokio::try_join!(
        repair_vpc_and_tags(ctx, &ec2, &names, &obs, &changed),
        ensure_subnets(ctx, &ec2, &names, &obs, zones, &plan, &changed),
        ensure_internet_gateway(ctx, &ec2, &names, &obs, &changed),
        ensure_security_groups(ctx, &ec2, &names, &obs, &changed),
    )?;

    if obs.without_nat() != spec.without_nat {
        changed.store(true, Ordering::Relaxed);
        let tag = Tag::builder().key(TAG_NAT).value(NO_NAT).build();
        let what = format!("tag VPC {} {TAG_NAT}", obs.vpc_id);
        if spec.without_nat {
            ec2.create_tags()
                .resources(&obs.vpc_id)
                .tags(tag)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, what, e))?;
        } else {
            ec2.delete_tags()
                .resources(&obs.vpc_id)
                .tags(tag)
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, what, e))?;
        }
    }

    ctx.check_cancelled(COMPONENT, "creating the NAT gateways")?;
    let nat_zones: Vec<&String> = if spec.without_nat {
        Vec::new()
    } else if spec.nat_gateway_per_az {
        zones.iter().collect()
    } else {
        // The single NAT gateway stays where it is if its zone is still
        // listed (a reordered list must not replace it); else zone one.
        let placed: BTreeSet<&str> = obs
            .active_nats(ctx)
            .filter_map(|n| obs.nat_zone(n))
            .collect();
        let zone = zones
            .iter()
            .find(|z| placed.contains(z.as_str()))
            .unwrap_or(&zones[0]);
        vec![zone]
    };
    let (nat_ids, extra_nats) = ensure_nat_gateways(
        ctx, &ec2, &names, &obs, zones, &nat_zones, &subnets, &changed,
    )
    .await?;

    ctx.check_cancelled(COMPONENT, "routing the subnets")?;
    let private_tables = zones.iter().enumerate().map(|(i, az)| {
        let target = if spec.without_nat {
            Target::Isolated
        } else if spec.nat_gateway_per_az {
            Target::Nat(nat_ids[i].clone())
        } else {
            Target::Nat(nat_ids[0].clone())
        };
        let subnet = subnets.private[i].clone();
        let name = names.private_route_table(az);
        let changed = &changed;
        let obs = &obs;
        let ec2 = &ec2;
        async move { ensure_route_table(ctx, ec2, obs, &name, target, &[subnet], changed).await }
    });
    let public_table = names.public_route_table();
    tokio::try_join!(
        ensure_route_table(
            ctx,
            &ec2,
            &obs,
            &public_table,
            Target::Gateway(igw),
            &subnets.public,
            &changed,
        ),
        try_join_all(private_tables),
    )?;

    if !extra_nats.is_empty() {
        changed.store(true, Ordering::Relaxed);
        remove_nat_gateways(ctx, &ec2, &obs, &extra_nats).await?;
    }

    if changed.load(Ordering::Relaxed) {
        let vpc = describe_vpc(ctx, &ec2, &obs.vpc_id).await?;
        let obs = observe(ctx, &ec2, &vpc, false).await?;
        Ok(state_from(ctx, &obs))
    } else {
        Ok(state_from(ctx, &obs))
    }
}

async fn describe_vpc(ctx: &Ctx, ec2: &Client, vpc_id: &str) -> Result<Vpc, ComponentError> {
    let _ = ctx;
    let out = ec2
        .describe_vpcs()
        .vpc_ids(vpc_id)
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, format!("read VPC {vpc_id}"), e))?;
    out.vpcs().first().cloned().ok_or_else(|| {
        conflict(format!(
            "VPC {vpc_id} disappeared while it was being built; retry the apply"
        ))
    })
}

async fn create_vpc(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    cidr: &str,
) -> Result<Vpc, ComponentError> {
    let what = format!("create the VPC {}", names.vpc());
    let created = create_or_adopt(
        ctx,
        COMPONENT,
        &what,
        || async {
            ec2.create_vpc()
                .cidr_block(cidr)
                .tag_specifications(tag_spec(
                    ResourceType::Vpc,
                    &desired_tags(ctx, &names.vpc()),
                ))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, what.clone(), e))
                .map(|out| out.vpc().cloned())
        },
        || async { find_vpc(ctx, ec2).await.map(|v| v.map(Some)) },
    )
    .await?;
    let vpc_id = created
        .as_ref()
        .and_then(|v| v.vpc_id())
        .unwrap_or_default()
        .to_string();
    ctx.wait_for(
        COMPONENT,
        &format!("VPC {vpc_id} to become available"),
        || async {
            let vpc = describe_vpc(ctx, ec2, &vpc_id).await?;
            Ok((vpc.state() == Some(&aws_sdk_ec2::types::VpcState::Available)).then_some(vpc))
        },
    )
    .await
}

/// DNS on, and the tags of every object we own back to what they should be.
async fn repair_vpc_and_tags(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
    changed: &AtomicBool,
) -> Result<(), ComponentError> {
    let vpc_id = obs.vpc_id.as_str();
    // DNS support must be on before hostnames can be, so one after the other.
    if !obs.dns_support {
        changed.store(true, Ordering::Relaxed);
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_support(on(true))
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("turn on DNS support of VPC {vpc_id}"), e))?;
    }
    if !obs.dns_hostnames {
        changed.store(true, Ordering::Relaxed);
        ec2.modify_vpc_attribute()
            .vpc_id(vpc_id)
            .enable_dns_hostnames(on(true))
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("turn on DNS hostnames of VPC {vpc_id}"),
                    e,
                )
            })?;
    }

    let objects: Vec<(String, &[Tag], BTreeMap<String, String>)> = owned_objects(ctx, names, obs)
        .into_iter()
        .map(|(_, id, current, desired)| (id, current, desired))
        .collect();
    let fixes = objects
        .into_iter()
        .filter(|(_, current, desired)| lacks_tags(current, desired))
        .map(|(id, _, desired)| async move {
            changed.store(true, Ordering::Relaxed);
            ec2.create_tags()
                .resources(&id)
                .set_tags(Some(ec2_tags(&desired)))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("tag {id}"), e))
        });
    try_join_all(fixes).await?;
    Ok(())
}

fn subnet_tags(ctx: &Ctx, names: &Names, tier: Tier, az: &str) -> BTreeMap<String, String> {
    let mut tags = desired_tags(ctx, &names.subnet(tier, az));
    let role = match tier {
        Tier::Private => "kubernetes.io/role/internal-elb",
        Tier::Public => "kubernetes.io/role/elb",
    };
    tags.insert(role.to_string(), "1".to_string());
    tags
}

async fn ensure_subnets(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
    zones: &[String],
    plan: &SubnetPlan,
    changed: &AtomicBool,
) -> Result<SubnetIds, ComponentError> {
    let mut used: BTreeSet<Ipv4Cidr> = obs
        .subnets
        .iter()
        .filter_map(|s| Ipv4Cidr::parse(s.cidr_block().unwrap_or_default()).ok())
        .collect();
    // (tier, zone index, Some(existing id) | None + the block to create)
    let mut work: Vec<(Tier, usize, Result<String, String>)> = Vec::new();
    for tier in [Tier::Private, Tier::Public] {
        let blocks = match tier {
            Tier::Private => &plan.private,
            Tier::Public => &plan.public,
        };
        for (i, az) in zones.iter().enumerate() {
            if let Some(s) = obs.subnet(names, tier, az) {
                let id = s.subnet_id().unwrap_or_default().to_string();
                let public = tier == Tier::Public;
                if (s.map_public_ip_on_launch() == Some(true)) != public {
                    changed.store(true, Ordering::Relaxed);
                    map_public_ips(ec2, &id, public).await?;
                }
                work.push((tier, i, Ok(id)));
                continue;
            }
            let preferred = Ipv4Cidr::parse(&blocks[i]).map_err(conflict)?;
            let block = if used.contains(&preferred) {
                blocks
                    .iter()
                    .filter_map(|b| Ipv4Cidr::parse(b).ok())
                    .find(|b| !used.contains(b))
                    .ok_or_else(|| {
                        conflict(format!(
                            "no free {} block left in the VPC for zone {az}: blocks {blocks:?} are all taken by other subnets",
                            tier.as_str()
                        ))
                    })?
            } else {
                preferred
            };
            used.insert(block);
            work.push((tier, i, Err(block.to_string())));
        }
    }
    let vpc_id = obs.vpc_id.as_str();
    let results = try_join_all(work.into_iter().map(|(tier, i, item)| async move {
        let id = match item {
            Ok(id) => id,
            Err(block) => {
                changed.store(true, Ordering::Relaxed);
                let az = &zones[i];
                let name = names.subnet(tier, az);
                let what = format!("create subnet {name} ({block})");
                let id = create_or_adopt(
                    ctx,
                    COMPONENT,
                    &what,
                    || async {
                        let out = ec2
                            .create_subnet()
                            .vpc_id(vpc_id)
                            .cidr_block(&block)
                            .availability_zone(az)
                            .tag_specifications(tag_spec(
                                ResourceType::Subnet,
                                &subnet_tags(ctx, names, tier, az),
                            ))
                            .send()
                            .await
                            .map_err(|e| aws_error(COMPONENT, what.clone(), e))?;
                        Ok(out
                            .subnet()
                            .and_then(|s| s.subnet_id())
                            .unwrap_or_default()
                            .to_string())
                    },
                    || find_named(ctx, ec2, Unanswered::Subnet, vpc_id, &name),
                )
                .await?;
                if tier == Tier::Public {
                    map_public_ips(ec2, &id, true).await?;
                }
                id
            }
        };
        Ok::<_, ComponentError>((tier, i, id))
    }))
    .await?;
    let mut ids = SubnetIds {
        private: vec![String::new(); zones.len()],
        public: vec![String::new(); zones.len()],
    };
    for (tier, i, id) in results {
        match tier {
            Tier::Private => ids.private[i] = id,
            Tier::Public => ids.public[i] = id,
        }
    }
    Ok(ids)
}

async fn map_public_ips(ec2: &Client, subnet_id: &str, public: bool) -> Result<(), ComponentError> {
    ec2.modify_subnet_attribute()
        .subnet_id(subnet_id)
        .map_public_ip_on_launch(on(public))
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!(
                    "turn {} public IPs on launch for subnet {subnet_id}",
                    if public { "on" } else { "off" }
                ),
                e,
            )
        })?;
    Ok(())
}

async fn ensure_internet_gateway(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
    changed: &AtomicBool,
) -> Result<String, ComponentError> {
    if let Some(id) = obs.attached_igw().and_then(|g| g.internet_gateway_id()) {
        return Ok(id.to_string());
    }
    changed.store(true, Ordering::Relaxed);
    let vpc_id = obs.vpc_id.as_str();
    // A gateway made by a killed apply but never attached is adopted.
    let spare = obs
        .igws
        .iter()
        .find(|g| g.attachments().iter().all(|a| !attachment_live(a)))
        .and_then(|g| g.internet_gateway_id())
        .map(str::to_string);
    let id = match spare {
        Some(id) => id,
        None => {
            let name = names.vpc();
            create_or_adopt(
                ctx,
                COMPONENT,
                "create the internet gateway",
                || async {
                    Ok(ec2
                        .create_internet_gateway()
                        .tag_specifications(tag_spec(
                            ResourceType::InternetGateway,
                            &desired_tags(ctx, &names.vpc()),
                        ))
                        .send()
                        .await
                        .map_err(|e| aws_error(COMPONENT, "create the internet gateway", e))?
                        .internet_gateway()
                        .and_then(|g| g.internet_gateway_id())
                        .unwrap_or_default()
                        .to_string())
                },
                || find_named(ctx, ec2, Unanswered::InternetGateway, vpc_id, &name),
            )
            .await?
        }
    };
    ec2.attach_internet_gateway()
        .internet_gateway_id(&id)
        .vpc_id(vpc_id)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("attach internet gateway {id} to VPC {vpc_id}"),
                e,
            )
        })?;
    Ok(id)
}

async fn ensure_security_groups(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
    changed: &AtomicBool,
) -> Result<GroupIds, ComponentError> {
    let vpc_id = obs.vpc_id.as_str();
    let ids = try_join_all(SECURITY_GROUPS.iter().map(|(role, _)| async move {
        let name = names.security_group(role);
        if let Some(id) = obs.security_group(&name).and_then(|g| g.group_id()) {
            return Ok(id.to_string());
        }
        changed.store(true, Ordering::Relaxed);
        let created = ec2
            .create_security_group()
            .group_name(&name)
            .description(format!("IDIS {} {role}", ctx.env))
            .vpc_id(vpc_id)
            .tag_specifications(tag_spec(
                ResourceType::SecurityGroup,
                &desired_tags(ctx, &name),
            ))
            .send()
            .await;
        match created {
            Ok(out) => Ok::<_, ComponentError>(out.group_id().unwrap_or_default().to_string()),
            // Made a moment ago by a call whose answer was lost (the SDK
            // repeated it) or by a concurrent apply: the name is ours.
            Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                let found = ec2
                    .describe_security_groups()
                    .filters(filter("vpc-id", vpc_id))
                    .filters(filter("group-name", &name))
                    .send()
                    .await
                    .map_err(|e| {
                        aws_error(COMPONENT, format!("look up security group {name}"), e)
                    })?;
                found
                    .security_groups()
                    .iter()
                    .find_map(|g| g.group_id().map(str::to_string))
                    .ok_or_else(|| {
                        conflict(format!(
                            "EC2 says security group {name} exists in VPC {vpc_id} but does not list it; retry the apply"
                        ))
                    })
            }
            Err(e) => Err(aws_error(COMPONENT, format!("create security group {name}"), e)),
        }
    }))
    .await?;
    let groups = GroupIds {
        cluster: ids[0].clone(),
        database: ids[1].clone(),
        cache: ids[2].clone(),
    };
    // Each group's rules: exactly what the provider makes of it.
    let mut by_name: BTreeMap<String, String> = SECURITY_GROUPS
        .iter()
        .zip([&groups.cluster, &groups.database, &groups.cache])
        .map(|((role, _), id)| (names.security_group(role), id.clone()))
        .collect();
    if let Some(eks) = obs
        .security_groups
        .iter()
        .find(|g| tag_value(g.tags(), EKS_CLUSTER_TAG) == Some(names.vpc().as_str()))
    {
        if let (Some(name), Some(id)) = (eks.group_name(), eks.group_id()) {
            by_name.insert(name.to_string(), id.to_string());
        }
    }
    let names_by_id: BTreeMap<&str, &str> = obs
        .security_groups
        .iter()
        .filter_map(|g| Some((g.group_id()?, g.group_name()?)))
        .collect();
    try_join_all(SECURITY_GROUPS.iter().map(|(role, _)| {
        let name = names.security_group(role);
        let id = by_name.get(&name).cloned().unwrap_or_default();
        let by_name = &by_name;
        let names_by_id = &names_by_id;
        async move {
            let (extra, missing) = match obs
                .security_groups
                .iter()
                .find(|g| g.group_id() == Some(id.as_str()))
            {
                Some(group) => rule_changes(group, obs, names, role, names_by_id),
                // Just made: AWS gave it the default egress only.
                None => (
                    Vec::new(),
                    wanted_rules(role, eks_cluster_group(names, obs))
                        .into_iter()
                        .filter(|r| r.ingress)
                        .collect(),
                ),
            };
            for (rule, add) in missing
                .iter()
                .map(|r| (r, true))
                .chain(extra.iter().map(|r| (r, false)))
            {
                changed.store(true, Ordering::Relaxed);
                let permission = ip_permission(rule, by_name, add);
                let action = format!(
                    "{} {} on security group {name}",
                    if add { "allow" } else { "revoke" },
                    rule.text()
                );
                let fail = |e: ComponentError| match e.code() {
                    Some("InvalidPermission.Duplicate" | "InvalidPermission.NotFound") => Ok(()),
                    _ => Err(e),
                };
                let result = match (rule.ingress, add) {
                    (true, true) => ec2
                        .authorize_security_group_ingress()
                        .group_id(&id)
                        .ip_permissions(permission)
                        .send()
                        .await
                        .map(|_| ())
                        .or_else(|e| fail(aws_error(COMPONENT, action.clone(), e))),
                    (false, true) => ec2
                        .authorize_security_group_egress()
                        .group_id(&id)
                        .ip_permissions(permission)
                        .send()
                        .await
                        .map(|_| ())
                        .or_else(|e| fail(aws_error(COMPONENT, action.clone(), e))),
                    (true, false) => ec2
                        .revoke_security_group_ingress()
                        .group_id(&id)
                        .ip_permissions(permission)
                        .send()
                        .await
                        .map(|_| ())
                        .or_else(|e| fail(aws_error(COMPONENT, action.clone(), e))),
                    (false, false) => ec2
                        .revoke_security_group_egress()
                        .group_id(&id)
                        .ip_permissions(permission)
                        .send()
                        .await
                        .map(|_| ())
                        .or_else(|e| fail(aws_error(COMPONENT, action.clone(), e))),
                };
                result?;
            }
            Ok::<_, ComponentError>(())
        }
    }))
    .await?;
    Ok(groups)
}

/// Makes sure each zone of `nat_zones` has an available NAT gateway in its
/// public subnet. Returns the NAT ids aligned with `nat_zones`, and our
/// NAT gateways that are no longer wanted (to remove once no route uses
/// them).
#[allow(clippy::too_many_arguments)]
async fn ensure_nat_gateways(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
    zones: &[String],
    nat_zones: &[&String],
    subnets: &SubnetIds,
    changed: &AtomicBool,
) -> Result<(Vec<String>, Vec<NatGateway>), ComponentError> {
    let public_of = |az: &str| {
        zones
            .iter()
            .position(|z| z == az)
            .map(|i| subnets.public[i].clone())
            .unwrap_or_default()
    };
    let ours: Vec<&NatGateway> = obs.active_nats(ctx).collect();
    let mut kept: BTreeSet<String> = BTreeSet::new();
    let mut work = Vec::new();
    for az in nat_zones {
        let subnet = public_of(az);
        let existing = ours
            .iter()
            .filter(|n| n.subnet_id() == Some(subnet.as_str()))
            .filter_map(|n| n.nat_gateway_id())
            .min();
        if let Some(id) = existing {
            kept.insert(id.to_string());
        }
        work.push((az.to_string(), subnet, existing.map(str::to_string)));
    }
    let mut spare_eips: Vec<&Address> = obs.free_eips();
    let vpc_id = obs.vpc_id.as_str();
    let nat_ids = try_join_all(work.into_iter().map(|(az, subnet, existing)| {
        // The free Elastic IP of this zone's NAT gateway (left by a killed
        // apply, or by a NAT gateway deleted out of band) is reused.
        let name = names.nat(&az);
        let spare = spare_eips
            .iter()
            .position(|a| name_of(a.tags()) == Some(name.as_str()))
            .map(|i| spare_eips.remove(i))
            .map(|a| {
                (
                    a.allocation_id().unwrap_or_default().to_string(),
                    a.association_id().map(str::to_string),
                )
            });
        async move {
            if let Some(id) = existing {
                return Ok(id);
            }
            changed.store(true, Ordering::Relaxed);
            let tags = desired_tags(ctx, &name);
            let allocation = match spare {
                Some((id, stale_association)) => {
                    if let Some(association) = stale_association {
                        match ec2
                            .disassociate_address()
                            .association_id(&association)
                            .send()
                            .await
                        {
                            Ok(_) => {}
                            Err(e) if absent(&e) => {}
                            Err(e) => {
                                return Err(aws_error(
                                    COMPONENT,
                                    format!("free Elastic IP {id} from its deleted NAT gateway"),
                                    e,
                                ))
                            }
                        }
                    }
                    id
                }
                None => {
                    let what = format!("allocate an Elastic IP for {name}");
                    create_or_adopt(
                        ctx,
                        COMPONENT,
                        &what,
                        || async {
                            Ok(ec2
                                .allocate_address()
                                .domain(DomainType::Vpc)
                                .tag_specifications(tag_spec(ResourceType::ElasticIp, &tags))
                                .send()
                                .await
                                .map_err(|e| aws_error(COMPONENT, what.clone(), e))?
                                .allocation_id()
                                .unwrap_or_default()
                                .to_string())
                        },
                        || find_named(ctx, ec2, Unanswered::ElasticIp, vpc_id, &name),
                    )
                    .await?
                }
            };
            let out = ec2
                .create_nat_gateway()
                .subnet_id(&subnet)
                .allocation_id(&allocation)
                .tag_specifications(tag_spec(ResourceType::Natgateway, &tags))
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("create NAT gateway {name} in subnet {subnet} of VPC {vpc_id}"),
                        e,
                    )
                })?;
            Ok::<_, ComponentError>(
                out.nat_gateway()
                    .and_then(|n| n.nat_gateway_id())
                    .unwrap_or_default()
                    .to_string(),
            )
        }
    }))
    .await?;

    let all_ready = nat_ids.iter().all(|id| {
        ours.iter().any(|n| {
            n.nat_gateway_id() == Some(id.as_str())
                && nat_state(n) == Some(&NatGatewayState::Available)
        })
    });
    if !all_ready {
        wait_nat_gateways_available(ctx, ec2, &nat_ids).await?;
    }

    let extra = ours
        .into_iter()
        .filter(|n| n.nat_gateway_id().is_some_and(|id| !kept.contains(id)))
        .cloned()
        .collect();
    Ok((nat_ids, extra))
}

async fn wait_nat_gateways_available(
    ctx: &Ctx,
    ec2: &Client,
    ids: &[String],
) -> Result<(), ComponentError> {
    let what = format!("NAT gateways {} to become available", ids.join(", "));
    ctx.wait_for(COMPONENT, &what, || async {
        let out = ec2
            .describe_nat_gateways()
            .set_nat_gateway_ids(Some(ids.to_vec()))
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            // Just created: not yet visible everywhere.
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(aws_error(COMPONENT, "read the NAT gateways", e)),
        };
        let nats = out.nat_gateways();
        if let Some(failed) = nats
            .iter()
            .find(|n| nat_state(n) == Some(&NatGatewayState::Failed))
        {
            return Err(conflict(format!(
                "NAT gateway {} failed: {} ({}); the next apply creates a new one",
                failed.nat_gateway_id().unwrap_or_default(),
                failed.failure_message().unwrap_or("no reason given"),
                failed.failure_code().unwrap_or("no code"),
            )));
        }
        let ready = nats.len() == ids.len()
            && nats
                .iter()
                .all(|n| nat_state(n) == Some(&NatGatewayState::Available));
        Ok(ready.then_some(()))
    })
    .await
}

enum Target {
    Gateway(String),
    Nat(String),
    /// No default route at all.
    Isolated,
}

/// One route table named `name` with `0.0.0.0/0 -> target`, associated to
/// exactly `subnets` (taking them over from another table if needed).
async fn ensure_route_table(
    ctx: &Ctx,
    ec2: &Client,
    obs: &Observed,
    name: &str,
    target: Target,
    subnets: &[String],
    changed: &AtomicBool,
) -> Result<String, ComponentError> {
    let existing = obs.route_table(name);
    let table_id = match existing.and_then(|t| t.route_table_id()) {
        Some(id) => id.to_string(),
        None => {
            changed.store(true, Ordering::Relaxed);
            ec2.create_route_table()
                .vpc_id(&obs.vpc_id)
                .tag_specifications(tag_spec(ResourceType::RouteTable, &desired_tags(ctx, name)))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, format!("create route table {name}"), e))?
                .route_table()
                .and_then(|t| t.route_table_id())
                .unwrap_or_default()
                .to_string()
        }
    };

    let current = existing.and_then(default_route_target);
    let (right, target_id) = match &target {
        Target::Gateway(id) => (
            current.and_then(|(g, _)| g) == Some(id.as_str()),
            id.as_str(),
        ),
        Target::Nat(id) => (
            current.and_then(|(_, n)| n) == Some(id.as_str()),
            id.as_str(),
        ),
        Target::Isolated => (!existing.is_some_and(has_default_route), "nowhere"),
    };
    if !right && matches!(target, Target::Isolated) {
        changed.store(true, Ordering::Relaxed);
        match ec2
            .delete_route()
            .route_table_id(&table_id)
            .destination_cidr_block(ANYWHERE)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if absent(&e) || e.code() == Some("InvalidRoute.NotFound") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the route {ANYWHERE} of route table {name}"),
                    e,
                ))
            }
        }
    } else if !right {
        changed.store(true, Ordering::Relaxed);
        let replace = existing.is_some_and(has_default_route);
        let action = format!("route {ANYWHERE} of route table {name} to {target_id}");
        let result = if replace {
            let call = ec2
                .replace_route()
                .route_table_id(&table_id)
                .destination_cidr_block(ANYWHERE);
            let call = match &target {
                Target::Gateway(id) => call.gateway_id(id),
                Target::Nat(id) => call.nat_gateway_id(id),
                Target::Isolated => call,
            };
            call.send()
                .await
                .map(|_| ())
                .map_err(|e| aws_error(COMPONENT, action, e))
        } else {
            let call = ec2
                .create_route()
                .route_table_id(&table_id)
                .destination_cidr_block(ANYWHERE);
            let call = match &target {
                Target::Gateway(id) => call.gateway_id(id),
                Target::Nat(id) => call.nat_gateway_id(id),
                Target::Isolated => call,
            };
            match call.send().await {
                Ok(_) => Ok(()),
                // The route was missing when read: this one is from a call
                // whose answer was lost (the SDK repeated it).
                Err(e) if e.code() == Some("RouteAlreadyExists") => Ok(()),
                Err(e) => Err(aws_error(COMPONENT, action, e)),
            }
        };
        result?;
    }

    // Routes nobody asked the provider for go.
    for route in existing.map(extra_route_entries).unwrap_or_default() {
        changed.store(true, Ordering::Relaxed);
        let action = format!(
            "delete the extra route {} of route table {name}",
            route_text(route)
        );
        let call = ec2
            .delete_route()
            .route_table_id(&table_id)
            .set_destination_cidr_block(route.destination_cidr_block().map(str::to_string))
            .set_destination_ipv6_cidr_block(
                route.destination_ipv6_cidr_block().map(str::to_string),
            );
        match call.send().await {
            Ok(_) => {}
            Err(e) if absent(&e) || e.code() == Some("InvalidRoute.NotFound") => {}
            Err(e) => return Err(aws_error(COMPONENT, action, e)),
        }
    }

    let associations = subnets.iter().map(|subnet| {
        let table_id = table_id.as_str();
        async move {
            if existing.is_some_and(|t| associated(t, subnet)) {
                return Ok(());
            }
            changed.store(true, Ordering::Relaxed);
            let action = format!("associate subnet {subnet} with route table {name}");
            match obs.association_of(subnet) {
                Some((other, association)) if other != table_id => ec2
                    .replace_route_table_association()
                    .association_id(association)
                    .route_table_id(table_id)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| aws_error(COMPONENT, action, e)),
                _ => ec2
                    .associate_route_table()
                    .route_table_id(table_id)
                    .subnet_id(subnet)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| aws_error(COMPONENT, action, e)),
            }
        }
    });
    try_join_all(associations).await?;
    Ok(table_id)
}

/// Deletes NAT gateways, waits until they are gone, then releases their
/// Elastic IPs (those tagged for this environment).
async fn remove_nat_gateways(
    ctx: &Ctx,
    ec2: &Client,
    obs: &Observed,
    nats: &[NatGateway],
) -> Result<(), ComponentError> {
    // Wait only for those not already gone: a failed NAT gateway never
    // reaches "deleted".
    let ids: Vec<String> = nats
        .iter()
        .filter(|n| !nat_dead(n))
        .filter_map(|n| n.nat_gateway_id())
        .map(str::to_string)
        .collect();
    try_join_all(nats.iter().filter(|n| nat_active(n)).map(|n| async move {
        let id = n.nat_gateway_id().unwrap_or_default();
        match ec2.delete_nat_gateway().nat_gateway_id(id).send().await {
            Ok(_) => Ok(()),
            Err(e) if absent(&e) => Ok(()),
            Err(e) => Err(aws_error(COMPONENT, format!("delete NAT gateway {id}"), e)),
        }
    }))
    .await?;
    let what = format!("NAT gateways {} to be deleted", ids.join(", "));
    ctx.wait_for(COMPONENT, &what, || async {
        if ids.is_empty() {
            return Ok(Some(()));
        }
        match ec2
            .describe_nat_gateways()
            .set_nat_gateway_ids(Some(ids.clone()))
            .send()
            .await
        {
            Ok(out) => Ok(out.nat_gateways().iter().all(nat_dead).then_some(())),
            Err(e) if absent(&e) => Ok(Some(())),
            Err(e) => Err(aws_error(
                COMPONENT,
                "read the NAT gateways being deleted",
                e,
            )),
        }
    })
    .await?;
    let ours: BTreeSet<&str> = obs.eips.iter().filter_map(|a| a.allocation_id()).collect();
    let allocations: Vec<String> = nats
        .iter()
        .flat_map(nat_allocation_ids)
        .filter(|a| ours.contains(a.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    release_addresses(ctx, ec2, &allocations).await
}

async fn release_addresses(
    ctx: &Ctx,
    ec2: &Client,
    allocations: &[String],
) -> Result<(), ComponentError> {
    try_join_all(allocations.iter().map(|id| {
        remove(
            ctx,
            format!("Elastic IP {id} to be released"),
            format!("release Elastic IP {id}"),
            move || ec2.release_address().allocation_id(id).send(),
        )
    }))
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// delete

/// Returns warnings for the plan/apply output (e.g. what was kept).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let ec2 = ctx.aws.ec2();
    let vpcs = ec2
        .describe_vpcs()
        .set_filters(Some(owned_filters(ctx)))
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, "look up the VPC by its tags", e))?
        .vpcs()
        .to_vec();
    for vpc in &vpcs {
        ctx.check_cancelled(COMPONENT, "deleting the network")?;
        delete_vpc(ctx, &ec2, vpc).await?;
    }

    // Leftovers of a killed apply outside any VPC: unattached gateways and
    // unassociated addresses tagged for this environment.
    let (igws, eips) = tokio::try_join!(
        async {
            ec2.describe_internet_gateways()
                .set_filters(Some(owned_filters(ctx)))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, "list the internet gateways", e))
        },
        async {
            ec2.describe_addresses()
                .set_filters(Some(owned_filters(ctx)))
                .send()
                .await
                .map_err(|e| aws_error(COMPONENT, "list the Elastic IPs", e))
        },
    )?;
    let loose_igws = igws
        .internet_gateways()
        .iter()
        .filter(|g| g.attachments().iter().all(|a| !attachment_live(a)))
        .filter_map(|g| g.internet_gateway_id())
        .map(|id| {
            let ec2 = &ec2;
            async move {
                match ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send()
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if absent(&e) => Ok(()),
                    Err(e) => Err(aws_error(
                        COMPONENT,
                        format!("delete internet gateway {id}"),
                        e,
                    )),
                }
            }
        });
    let loose_eips: Vec<String> = eips
        .addresses()
        .iter()
        .filter(|a| a.association_id().is_none())
        .filter_map(|a| a.allocation_id())
        .map(str::to_string)
        .collect();
    tokio::try_join!(
        try_join_all(loose_igws),
        release_addresses(ctx, &ec2, &loose_eips)
    )?;
    Ok(Vec::new())
}

/// Fails when something in the environment's VPC will refuse to go on
/// purpose (a load balancer of the cluster with deletion protection), so
/// that destroy can stop before it deletes anything at all.
pub async fn check_deletable(ctx: &Ctx) -> Result<(), ComponentError> {
    let ec2 = ctx.aws.ec2();
    let vpcs = ec2
        .describe_vpcs()
        .set_filters(Some(owned_filters(ctx)))
        .send()
        .await
        .map_err(|e| aws_error(COMPONENT, "look up the VPC by its tags", e))?
        .vpcs()
        .to_vec();
    for vpc in &vpcs {
        let vpc_id = vpc.vpc_id().unwrap_or_default();
        let found = leftovers::find(ctx, &ec2, vpc_id, &[], |_| true).await?;
        leftovers::refuse_protected(ctx, &found).await?;
    }
    Ok(())
}

/// Everything in one VPC, in reverse dependency order, then the VPC.
async fn delete_vpc(ctx: &Ctx, ec2: &Client, vpc: &Vpc) -> Result<(), ComponentError> {
    let names = Names::new(ctx);
    let obs = observe(ctx, ec2, vpc, true).await?;
    let vpc_id = obs.vpc_id.as_str();

    // Subnets someone else made would block the VPC's deletion forever:
    // say so before deleting anything.
    let foreign: Vec<&str> = obs
        .subnets
        .iter()
        .filter(|s| !is_ours(ctx, s.tags()))
        .filter_map(|s| s.subnet_id())
        .collect();
    if !foreign.is_empty() {
        return Err(conflict(format!(
            "VPC {vpc_id} holds subnets this provider did not make ({}); delete them (and what runs in them) first, then destroy again",
            foreign.join(", ")
        )));
    }

    // What EKS and the cluster's controllers made in the VPC blocks the
    // subnets and the VPC; what cannot go is refused before anything else.
    let leftovers = leftovers::find(ctx, ec2, vpc_id, &obs.security_groups, |tags| {
        is_ours(ctx, tags)
    })
    .await?;
    leftovers::refuse_protected(ctx, &leftovers).await?;
    if !leftovers.is_empty() {
        crate::logging::info(&format!(
            "{}: removing what the cluster left in VPC {vpc_id}: {}",
            ctx.env,
            leftovers.describe()
        ));
    }

    // NAT gateways hold public addresses and network interfaces in the
    // public subnets: they go first, and their addresses with them,
    // while the cluster's load balancers and interfaces go too.
    let nats: Vec<NatGateway> = obs
        .nats
        .iter()
        .filter(|n| is_ours(ctx, n.tags()))
        .cloned()
        .collect();
    tokio::try_join!(
        remove_nat_gateways(ctx, ec2, &obs, &nats),
        leftovers::remove_before_subnets(ctx, ec2, &leftovers),
    )?;
    let remaining: Vec<String> = obs
        .free_eips()
        .into_iter()
        .filter_map(|a| a.allocation_id())
        .map(str::to_string)
        .filter(|a| !nats.iter().flat_map(nat_allocation_ids).any(|n| &n == a))
        .collect();
    release_addresses(ctx, ec2, &remaining).await?;

    ctx.check_cancelled(COMPONENT, "deleting the network")?;
    let tables = obs
        .route_tables
        .iter()
        .filter(|t| is_ours(ctx, t.tags()))
        .filter(|t| !t.associations().iter().any(|a| a.main() == Some(true)))
        .map(|t| async move {
            let id = t.route_table_id().unwrap_or_default();
            try_join_all(
                t.associations()
                    .iter()
                    .filter_map(|a| a.route_table_association_id())
                    .map(|assoc| async move {
                        match ec2
                            .disassociate_route_table()
                            .association_id(assoc)
                            .send()
                            .await
                        {
                            Ok(_) => Ok(()),
                            Err(e) if absent(&e) => Ok(()),
                            Err(e) => Err(aws_error(
                                COMPONENT,
                                format!("disassociate {assoc} from route table {id}"),
                                e,
                            )),
                        }
                    }),
            )
            .await?;
            remove(
                ctx,
                format!("route table {id} to be deletable"),
                format!("delete route table {id}"),
                || ec2.delete_route_table().route_table_id(id).send(),
            )
            .await
        });
    let gateways = obs
        .igws
        .iter()
        .filter_map(|g| g.internet_gateway_id())
        .map(|id| async move {
            remove(
                ctx,
                format!("internet gateway {id} to detach from VPC {vpc_id}"),
                format!("detach internet gateway {id} from VPC {vpc_id}"),
                || {
                    ec2.detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(vpc_id)
                        .send()
                },
            )
            .await?;
            remove(
                ctx,
                format!("internet gateway {id} to be deletable"),
                format!("delete internet gateway {id}"),
                || ec2.delete_internet_gateway().internet_gateway_id(id).send(),
            )
            .await
        });
    tokio::try_join!(
        try_join_all(tables),
        try_join_all(gateways),
        delete_security_groups(ctx, ec2, &names, &obs),
        leftovers::remove_security_groups(ctx, ec2, &leftovers),
    )?;

    ctx.check_cancelled(COMPONENT, "deleting the network")?;
    let subnets = obs
        .subnets
        .iter()
        .filter(|s| is_ours(ctx, s.tags()))
        .filter_map(|s| s.subnet_id())
        .map(|id| {
            remove(
                ctx,
                format!("subnet {id} to lose its network interfaces"),
                format!("delete subnet {id}"),
                move || ec2.delete_subnet().subnet_id(id).send(),
            )
        });
    try_join_all(subnets).await?;

    remove(
        ctx,
        format!("VPC {vpc_id} to lose its last dependencies (network interfaces, subnets or security groups made outside this provider)"),
        format!("delete VPC {vpc_id}"),
        || ec2.delete_vpc().vpc_id(vpc_id).send(),
    )
    .await
}

/// Revokes the rules by which our groups reference each other, then
/// deletes the groups.
async fn delete_security_groups(
    ctx: &Ctx,
    ec2: &Client,
    names: &Names,
    obs: &Observed,
) -> Result<(), ComponentError> {
    let groups: Vec<&SecurityGroup> = SECURITY_GROUPS
        .iter()
        .filter_map(|(role, _)| obs.security_group(&names.security_group(role)))
        .collect();
    delete_groups(ctx, ec2, &groups, "of this environment")
        .await
        .into_iter()
        .collect()
}

/// The rules of `rules` that reference other groups, as RevokeSecurityGroup*
/// takes them back.
fn group_references(rules: &[IpPermission]) -> Vec<IpPermission> {
    rules
        .iter()
        .filter(|p| !p.user_id_group_pairs().is_empty())
        .map(|p| {
            IpPermission::builder()
                .set_ip_protocol(p.ip_protocol().map(str::to_string))
                .set_from_port(p.from_port())
                .set_to_port(p.to_port())
                .set_user_id_group_pairs(Some(
                    p.user_id_group_pairs()
                        .iter()
                        .map(|pair| {
                            // As observed: moto matches the description too.
                            UserIdGroupPair::builder()
                                .set_group_id(pair.group_id().map(str::to_string))
                                .set_user_id(pair.user_id().map(str::to_string))
                                .set_description(pair.description().map(str::to_string))
                                .build()
                        })
                        .collect(),
                ))
                .build()
        })
        .collect()
}

/// Revokes the rules (in and out) by which `groups` reference other
/// groups, then deletes each group, retrying while something still uses
/// it. One result per group (`whose` describes them in messages), so a
/// caller can name every group that did not go.
async fn delete_groups(
    ctx: &Ctx,
    ec2: &Client,
    groups: &[&SecurityGroup],
    whose: &str,
) -> Vec<Result<(), ComponentError>> {
    let revoked = join_all(groups.iter().map(|g| async move {
        let id = g.group_id().unwrap_or_default();
        let ingress = group_references(g.ip_permissions());
        if !ingress.is_empty() {
            match ec2
                .revoke_security_group_ingress()
                .group_id(id)
                .set_ip_permissions(Some(ingress))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if absent(&e) => {}
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("revoke the group rules of security group {id} ({whose})"),
                        e,
                    ))
                }
            }
        }
        let egress = group_references(g.ip_permissions_egress());
        if !egress.is_empty() {
            match ec2
                .revoke_security_group_egress()
                .group_id(id)
                .set_ip_permissions(Some(egress))
                .send()
                .await
            {
                Ok(_) => {}
                Err(e) if absent(&e) => {}
                Err(e) => {
                    return Err(aws_error(
                        COMPONENT,
                        format!("revoke the outbound group rules of security group {id} ({whose})"),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }))
    .await;
    let mut results = Vec::new();
    let mut deletable = Vec::new();
    for (g, r) in groups.iter().zip(revoked) {
        match r {
            Ok(()) => deletable.extend(g.group_id()),
            Err(e) => results.push(Err(e)),
        }
    }
    results.extend(
        join_all(deletable.into_iter().map(|id| {
            remove(
                ctx,
                format!(
                    "security group {id} ({whose}) to lose its network interfaces and references"
                ),
                format!("delete security group {id} ({whose})"),
                move || ec2.delete_security_group().group_id(id).send(),
            )
        }))
        .await,
    );
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slash_16_splits_into_eight_slash_19s() {
        let plan = subnet_plan("10.0.0.0/16").unwrap();
        assert_eq!(
            plan.private,
            [
                "10.0.0.0/19",
                "10.0.32.0/19",
                "10.0.64.0/19",
                "10.0.96.0/19"
            ]
        );
        assert_eq!(
            plan.public,
            [
                "10.0.128.0/19",
                "10.0.160.0/19",
                "10.0.192.0/19",
                "10.0.224.0/19"
            ]
        );
    }

    #[test]
    fn a_slash_24_splits_into_slash_27s() {
        let plan = subnet_plan("192.168.7.0/24").unwrap();
        assert_eq!(plan.private[0], "192.168.7.0/27");
        assert_eq!(plan.private[3], "192.168.7.96/27");
        assert_eq!(plan.public[0], "192.168.7.128/27");
        assert_eq!(plan.public[3], "192.168.7.224/27");
    }

    #[test]
    fn blocks_do_not_overflow_at_the_top_of_the_address_space() {
        let plan = subnet_plan("255.255.0.0/16").unwrap();
        assert_eq!(plan.public[3], "255.255.224.0/19");
    }

    #[test]
    fn odd_prefixes_split_too() {
        let plan = subnet_plan("172.16.0.0/20").unwrap();
        assert_eq!(plan.private[1], "172.16.2.0/23");
        assert_eq!(plan.public[0], "172.16.8.0/23");
    }

    #[test]
    fn bad_cidrs_say_why() {
        assert!(subnet_plan("10.0.0.0")
            .unwrap_err()
            .contains("not an IPv4 CIDR"));
        assert!(subnet_plan("10.0.0.0/33").is_err());
        assert!(subnet_plan("10.0.300.0/16").is_err());
        assert!(subnet_plan("10.0.1.0/16")
            .unwrap_err()
            .contains("10.0.0.0/16"));
        assert!(subnet_plan("10.0.0.0/8")
            .unwrap_err()
            .contains("/16 to /25"));
        assert!(subnet_plan("10.0.0.0/26").is_err());
    }

    #[test]
    fn cidrs_compare_by_value() {
        assert!(same_cidr("10.0.0.0/16", " 10.0.0.0/16"));
        assert!(!same_cidr("10.0.0.0/16", "10.1.0.0/16"));
        assert!(!same_cidr("10.0.0.0/16", "10.0.0.0/17"));
    }
}
