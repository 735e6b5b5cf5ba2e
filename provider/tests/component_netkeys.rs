mod support;

// The network and keys components against moto: what `ensure` builds is
// checked through the AWS SDK directly, then drift, repair, adoption after
// a killed apply, and deletion.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, NatGatewayState, ResourceType, Tag,
    TagSpecification, VpcAttributeName,
};
use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType};
use support::Moto;
use terraform_provider_idis::components::keys;
use terraform_provider_idis::components::keys::KeysSpec;
use terraform_provider_idis::components::network::NetworkSpec;
use terraform_provider_idis::components::network::{self, NetworkState};
use terraform_provider_idis::components::{ComponentError, Ctx};

const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];

// ---------------------------------------------------------------------------
// helpers

fn network_spec(cidr: &str, per_az: bool) -> NetworkSpec {
    NetworkSpec {
        vpc_cidr: cidr.to_string(),
        availability_zones: ZONES.iter().map(|z| z.to_string()).collect(),
        nat_gateway_per_az: per_az,
        without_nat: false,
    }
}

fn keys_spec(tenants: &[&str]) -> KeysSpec {
    KeysSpec {
        tenants: tenants.iter().map(|t| t.to_string()).collect(),
        deletion_window_days: 7,
        rotation_enabled: true,
    }
}

fn f(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

fn owned(env: &str) -> Vec<Filter> {
    vec![
        f("tag:idis:environment", env),
        f("tag:idis:component", "network"),
    ]
}

fn ec2_tags(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn ownership(ctx: &Ctx, component: &str, name: &str) -> Vec<Tag> {
    let mut tags: Vec<Tag> = ctx
        .tags(component)
        .into_iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    tags.push(Tag::builder().key("Name").value(name).build());
    tags
}

/// What the network of `env` is made of, counted through EC2 directly.
#[derive(Debug, PartialEq)]
struct NetworkCounts {
    vpcs: usize,
    subnets: usize,
    internet_gateways: usize,
    live_nat_gateways: usize,
    elastic_ips: usize,
    route_tables: usize,
    security_groups: usize,
}

async fn count_network(ctx: &Ctx) -> NetworkCounts {
    let ec2 = ctx.aws.ec2();
    let filters = || Some(owned(&ctx.env));
    let vpcs = ec2
        .describe_vpcs()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    let subnets = ec2
        .describe_subnets()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    let igws = ec2
        .describe_internet_gateways()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    let eips = ec2
        .describe_addresses()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    let groups = ec2
        .describe_security_groups()
        .set_filters(filters())
        .send()
        .await
        .unwrap();
    // moto's DescribeNatGateways has no tag filters: filter here.
    let nats = ec2.describe_nat_gateways().send().await.unwrap();
    let live_nats = nats
        .nat_gateways()
        .iter()
        .filter(|n| {
            ec2_tags(n.tags()).get("idis:environment") == Some(&ctx.env)
                && matches!(
                    n.state(),
                    Some(NatGatewayState::Available | NatGatewayState::Pending)
                )
        })
        .count();
    NetworkCounts {
        vpcs: vpcs.vpcs().len(),
        subnets: subnets.subnets().len(),
        internet_gateways: igws.internet_gateways().len(),
        live_nat_gateways: live_nats,
        elastic_ips: eips.addresses().len(),
        route_tables: tables.route_tables().len(),
        security_groups: groups.security_groups().len(),
    }
}

fn full_network(nats: usize) -> NetworkCounts {
    NetworkCounts {
        vpcs: 1,
        subnets: 6,
        internet_gateways: 1,
        live_nat_gateways: nats,
        elastic_ips: nats,
        route_tables: 4,
        security_groups: 3,
    }
}

/// The 0.0.0.0/0 targets (gateway, NAT) of each route table of the VPC, by Name.
async fn default_routes(
    ctx: &Ctx,
    vpc_id: &str,
) -> BTreeMap<String, (Option<String>, Option<String>, BTreeSet<String>)> {
    let out = ctx
        .aws
        .ec2()
        .describe_route_tables()
        .filters(f("vpc-id", vpc_id))
        .send()
        .await
        .unwrap();
    out.route_tables()
        .iter()
        .filter_map(|t| {
            let name = ec2_tags(t.tags()).get("Name")?.clone();
            let route = t
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some("0.0.0.0/0"));
            let subnets = t
                .associations()
                .iter()
                .filter_map(|a| a.subnet_id())
                .map(str::to_string)
                .collect();
            Some((
                name,
                (
                    route.and_then(|r| r.gateway_id()).map(str::to_string),
                    route.and_then(|r| r.nat_gateway_id()).map(str::to_string),
                    subnets,
                ),
            ))
        })
        .collect()
}

async fn dns_hostnames(ctx: &Ctx, vpc_id: &str) -> bool {
    ctx.aws
        .ec2()
        .describe_vpc_attribute()
        .vpc_id(vpc_id)
        .attribute(VpcAttributeName::EnableDnsHostnames)
        .send()
        .await
        .unwrap()
        .enable_dns_hostnames()
        .and_then(|v| v.value())
        .unwrap_or(false)
}

/// Checks the routing of a whole network: public table to the IGW for the
/// public subnets, one private table per zone to `expected_nat(zone index)`.
async fn assert_routing(ctx: &Ctx, state: &NetworkState, expected_nat: impl Fn(usize) -> String) {
    let routes = default_routes(ctx, &state.vpc_id).await;
    let public = &routes[&format!("idis-{}-public", ctx.env)];
    assert_eq!(
        public.0.as_deref(),
        Some(state.internet_gateway_id.as_str())
    );
    assert_eq!(
        public.2,
        state
            .public_subnet_ids
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>()
    );
    for (i, zone) in ZONES.iter().enumerate() {
        let private = &routes[&format!("idis-{}-private-{zone}", ctx.env)];
        assert_eq!(private.1, Some(expected_nat(i)), "route of zone {zone}");
        assert_eq!(
            private.2,
            BTreeSet::from([state.private_subnet_ids[i].clone()]),
            "association of zone {zone}"
        );
    }
}

// ---------------------------------------------------------------------------
// network

#[tokio::test]
async fn ensure_builds_the_whole_network_from_the_spec() {
    let moto = Moto::start();
    let ctx = moto.ctx("production").await;
    let state = network::ensure(&ctx, &network_spec("10.0.0.0/16", true))
        .await
        .unwrap();
    support::assert_guards_hold::<network::Network>(
        &state.verdicts,
        &network_spec("10.0.0.0/16", true),
    );
    let ec2 = moto.aws().await.ec2();

    // The VPC: CIDR, DNS, tags.
    let vpc = ec2
        .describe_vpcs()
        .vpc_ids(&state.vpc_id)
        .send()
        .await
        .unwrap()
        .vpcs()[0]
        .clone();
    assert_eq!(vpc.cidr_block(), Some("10.0.0.0/16"));
    let tags = ec2_tags(vpc.tags());
    assert_eq!(tags["Name"], "idis-production");
    assert_eq!(tags["idis:environment"], "production");
    assert_eq!(tags["idis:component"], "network");
    assert_eq!(tags["managed-by"], "terraform-provider-idis");
    assert_eq!(tags["team"], "platform");
    assert!(dns_hostnames(&ctx, &state.vpc_id).await);
    let support = ec2
        .describe_vpc_attribute()
        .vpc_id(&state.vpc_id)
        .attribute(VpcAttributeName::EnableDnsSupport)
        .send()
        .await
        .unwrap();
    assert_eq!(
        support.enable_dns_support().and_then(|v| v.value()),
        Some(true)
    );

    // Subnets: private blocks 0..2 and public blocks 4..6 of the /16, one per zone.
    let subnets = ec2
        .describe_subnets()
        .filters(f("vpc-id", &state.vpc_id))
        .send()
        .await
        .unwrap();
    let by_name: BTreeMap<String, _> = subnets
        .subnets()
        .iter()
        .map(|s| (ec2_tags(s.tags())["Name"].clone(), s.clone()))
        .collect();
    assert_eq!(by_name.len(), 6);
    let private_cidrs = ["10.0.0.0/19", "10.0.32.0/19", "10.0.64.0/19"];
    let public_cidrs = ["10.0.128.0/19", "10.0.160.0/19", "10.0.192.0/19"];
    for (i, zone) in ZONES.iter().enumerate() {
        let private = &by_name[&format!("idis-production-private-{zone}")];
        assert_eq!(private.cidr_block(), Some(private_cidrs[i]));
        assert_eq!(private.availability_zone(), Some(*zone));
        assert_eq!(
            ec2_tags(private.tags())["kubernetes.io/role/internal-elb"],
            "1"
        );
        assert_eq!(ec2_tags(private.tags())["team"], "platform");
        assert_eq!(
            private.subnet_id(),
            Some(state.private_subnet_ids[i].as_str())
        );
        let public = &by_name[&format!("idis-production-public-{zone}")];
        assert_eq!(public.cidr_block(), Some(public_cidrs[i]));
        assert_eq!(public.availability_zone(), Some(*zone));
        assert_eq!(ec2_tags(public.tags())["kubernetes.io/role/elb"], "1");
        assert_eq!(public.map_public_ip_on_launch(), Some(true));
        assert_eq!(
            public.subnet_id(),
            Some(state.public_subnet_ids[i].as_str())
        );
    }

    // Internet gateway attached.
    let igw = ec2
        .describe_internet_gateways()
        .internet_gateway_ids(&state.internet_gateway_id)
        .send()
        .await
        .unwrap()
        .internet_gateways()[0]
        .clone();
    assert_eq!(igw.attachments()[0].vpc_id(), Some(state.vpc_id.as_str()));

    // One available NAT gateway per zone, in that zone's public subnet, with its EIP.
    assert_eq!(state.nat_gateway_ids.len(), 3);
    assert!(state.nat_gateway_per_az);
    let nats = ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(state.nat_gateway_ids.clone()))
        .send()
        .await
        .unwrap();
    for (i, id) in state.nat_gateway_ids.iter().enumerate() {
        let nat = nats
            .nat_gateways()
            .iter()
            .find(|n| n.nat_gateway_id() == Some(id.as_str()))
            .unwrap();
        assert_eq!(nat.state(), Some(&NatGatewayState::Available));
        assert_eq!(nat.subnet_id(), Some(state.public_subnet_ids[i].as_str()));
        assert_eq!(
            nat.nat_gateway_addresses()[0].allocation_id(),
            Some(state.nat_eip_allocation_ids[i].as_str())
        );
        assert_eq!(
            ec2_tags(nat.tags())["Name"],
            format!("idis-production-nat-{}", ZONES[i])
        );
    }
    let eips = ec2
        .describe_addresses()
        .set_allocation_ids(Some(state.nat_eip_allocation_ids.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(eips.addresses().len(), 3);
    assert!(eips
        .addresses()
        .iter()
        .all(|a| ec2_tags(a.tags())["idis:environment"] == "production"));

    // Routing: public to the IGW, each zone's private table to its own NAT.
    assert_routing(&ctx, &state, |i| state.nat_gateway_ids[i].clone()).await;

    // Security groups: database and cache open to the cluster group only.
    let groups = ec2
        .describe_security_groups()
        .filters(f("vpc-id", &state.vpc_id))
        .send()
        .await
        .unwrap();
    let group = |name: &str| {
        groups
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .unwrap()
            .clone()
    };
    let cluster = group("idis-production-cluster");
    let database = group("idis-production-database");
    let cache = group("idis-production-cache");
    assert_eq!(
        cluster.group_id(),
        Some(state.cluster_security_group_id.as_str())
    );
    assert_eq!(
        database.group_id(),
        Some(state.database_security_group_id.as_str())
    );
    assert_eq!(
        cache.group_id(),
        Some(state.cache_security_group_id.as_str())
    );
    // Before there is a cluster nothing is let in.
    for g in [&database, &cache] {
        assert!(g.ip_permissions().is_empty(), "{:?}", g.ip_permissions());
        assert_eq!(ec2_tags(g.tags())["idis:environment"], "production");
    }

    // The group EKS makes for the cluster (what its managed nodes run
    // with) is let in once it exists, on exactly the two ports.
    let eks_group = ec2
        .create_security_group()
        .group_name("eks-cluster-sg-idis-production-1234")
        .description("EKS created security group")
        .vpc_id(&state.vpc_id)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(aws_sdk_ec2::types::ResourceType::SecurityGroup)
                .tags(
                    Tag::builder()
                        .key("aws:eks:cluster-name")
                        .value("idis-production")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap()
        .group_id()
        .unwrap()
        .to_string();
    let admitted = network::admit_cluster(&ctx).await.unwrap();
    assert!(admitted.drift.is_empty(), "{:?}", admitted.drift);
    let groups = ec2
        .describe_security_groups()
        .filters(f("vpc-id", &state.vpc_id))
        .send()
        .await
        .unwrap();
    for (name, port) in [
        ("idis-production-database", 5432),
        ("idis-production-cache", 6379),
    ] {
        let g = groups
            .security_groups()
            .iter()
            .find(|g| g.group_name() == Some(name))
            .unwrap();
        assert_eq!(
            g.ip_permissions().len(),
            1,
            "{name}: {:?}",
            g.ip_permissions()
        );
        let rule = &g.ip_permissions()[0];
        assert_eq!(rule.ip_protocol(), Some("tcp"));
        assert_eq!((rule.from_port(), rule.to_port()), (Some(port), Some(port)));
        assert_eq!(
            rule.user_id_group_pairs()[0].group_id(),
            Some(eks_group.as_str())
        );
        assert!(rule.ip_ranges().is_empty());
    }

    // The state says what AWS has.
    assert_eq!(state.vpc_cidr, "10.0.0.0/16");
    assert_eq!(state.availability_zones, ZONES);
    assert_eq!(
        state.tags,
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );
    assert!(state.drift.is_empty(), "{:?}", state.drift);
    assert_eq!(count_network(&ctx).await, full_network(3));
}

#[tokio::test]
async fn ensure_twice_creates_nothing_new_and_find_reads_back_the_same_state() {
    let moto = Moto::start();
    let ctx = moto.ctx("staging").await;
    assert_eq!(network::find(&ctx).await.unwrap(), None);

    let spec = network_spec("10.20.0.0/16", true);
    let first = network::ensure(&ctx, &spec).await.unwrap();
    let second = network::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(count_network(&ctx).await, full_network(3));

    let found = network::find(&ctx).await.unwrap().expect("network exists");
    assert_eq!(found, first);
    assert_eq!(found.vpc_cidr, "10.20.0.0/16");
    assert_eq!(found.availability_zones, ZONES);
    assert!(found.nat_gateway_per_az);
    assert_eq!(found.private_subnet_ids.len(), 3);
    assert_eq!(found.public_subnet_ids.len(), 3);
    assert_eq!(found.nat_eip_allocation_ids.len(), 3);
    assert!(!found.cluster_security_group_id.is_empty());
    assert_eq!(found.tags["team"], "platform");
}

#[tokio::test]
async fn a_slash_24_vpc_gets_slash_27_subnets_and_a_single_nat_gateway() {
    let moto = Moto::start();
    let ctx = moto.ctx("small").await;
    let state = network::ensure(&ctx, &network_spec("192.168.10.0/24", false))
        .await
        .unwrap();
    assert!(!state.nat_gateway_per_az);
    assert_eq!(state.nat_gateway_ids.len(), 1);
    let subnets = ctx
        .aws
        .ec2()
        .describe_subnets()
        .set_subnet_ids(Some(state.private_subnet_ids.clone()))
        .send()
        .await
        .unwrap();
    let mut cidrs: Vec<&str> = subnets
        .subnets()
        .iter()
        .filter_map(|s| s.cidr_block())
        .collect();
    cidrs.sort();
    assert_eq!(
        cidrs,
        ["192.168.10.0/27", "192.168.10.32/27", "192.168.10.64/27"]
    );
    // Every zone's private table goes through the one NAT gateway.
    assert_routing(&ctx, &state, |_| state.nat_gateway_ids[0].clone()).await;
    assert_eq!(count_network(&ctx).await, full_network(1));
}

#[tokio::test]
async fn switching_between_one_and_per_zone_nat_gateways_converges() {
    let moto = Moto::start();
    let ctx = moto.ctx("switch").await;
    let single = network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    assert_eq!(single.nat_gateway_ids.len(), 1);

    let per_zone = network::ensure(&ctx, &network_spec("10.0.0.0/16", true))
        .await
        .unwrap();
    assert_eq!(per_zone.nat_gateway_ids.len(), 3);
    assert_eq!(
        per_zone.nat_gateway_ids[0], single.nat_gateway_ids[0],
        "the first NAT is kept"
    );
    assert_routing(&ctx, &per_zone, |i| per_zone.nat_gateway_ids[i].clone()).await;

    let back = network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    assert_eq!(back.nat_gateway_ids, single.nat_gateway_ids);
    assert!(!back.nat_gateway_per_az);
    assert_routing(&ctx, &back, |_| back.nat_gateway_ids[0].clone()).await;
    // The two extra NAT gateways are deleted and their addresses released.
    assert_eq!(count_network(&ctx).await, full_network(1));
    assert!(back.drift.is_empty(), "{:?}", back.drift);
}

#[tokio::test]
async fn a_network_without_nat_has_no_way_out_and_is_judged_by_what_it_was_made_for() {
    let moto = Moto::start();
    let ctx = moto.ctx("nonat").await;
    let spec = NetworkSpec {
        without_nat: true,
        ..network_spec("10.1.0.0/16", false)
    };
    let made = network::ensure(&ctx, &spec).await.unwrap();
    assert!(
        made.nat_gateway_ids.is_empty(),
        "{:?}",
        made.nat_gateway_ids
    );
    let routes = default_routes(&ctx, &made.vpc_id).await;
    for (name, (gateway, nat, _)) in &routes {
        if name.contains("-private-") {
            assert_eq!((gateway, nat), (&None, &None), "{name} has a way out");
        }
    }
    let found = network::find(&ctx).await.unwrap().unwrap();
    assert!(found.verdicts.is_clean(), "{:?}", found.verdicts);

    // Turning NAT on (a DR site's promotion) gives every private subnet its
    // way out again and judges the network as any other.
    let with_nat = network::ensure(&ctx, &network_spec("10.1.0.0/16", true))
        .await
        .unwrap();
    assert_eq!(with_nat.nat_gateway_ids.len(), 3);
    assert_routing(&ctx, &with_nat, |i| with_nat.nat_gateway_ids[i].clone()).await;
    let found = network::find(&ctx).await.unwrap().unwrap();
    assert!(found.verdicts.is_clean(), "{:?}", found.verdicts);

    // And back: the NAT gateways go, and a NAT gateway left behind would be
    // a problem of the network made without one.
    let back = network::ensure(&ctx, &spec).await.unwrap();
    assert!(back.nat_gateway_ids.is_empty());
    let routes = default_routes(&ctx, &back.vpc_id).await;
    assert!(routes
        .iter()
        .filter(|(name, _)| name.contains("-private-"))
        .all(|(_, (g, n, _))| g.is_none() && n.is_none()));
    assert!(network::find(&ctx)
        .await
        .unwrap()
        .unwrap()
        .verdicts
        .is_clean());
}

#[tokio::test]
async fn out_of_band_changes_are_seen_by_find_and_repaired_by_ensure() {
    let moto = Moto::start();
    let ctx = moto.ctx("drifty").await;
    let spec = network_spec("10.0.0.0/16", true);
    let before = network::ensure(&ctx, &spec).await.unwrap();
    let ec2 = moto.aws().await.ec2();
    let vpc = before.vpc_id.as_str();

    // Someone removes a tag, turns DNS hostnames off, deletes a NAT
    // gateway, revokes the database rule, deletes the public default route,
    // takes a public subnet off its table, deletes the cache group and a
    // private subnet.
    ec2.delete_tags()
        .resources(vpc)
        .tags(Tag::builder().key("team").build())
        .send()
        .await
        .unwrap();
    ec2.modify_vpc_attribute()
        .vpc_id(vpc)
        .enable_dns_hostnames(AttributeBooleanValue::builder().value(false).build())
        .send()
        .await
        .unwrap();
    ec2.delete_nat_gateway()
        .nat_gateway_id(&before.nat_gateway_ids[1])
        .send()
        .await
        .unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&before.database_security_group_id)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(5432)
                .to_port(5432)
                .ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let tables = ec2
        .describe_route_tables()
        .filters(f("vpc-id", vpc))
        .filters(f("tag:Name", "idis-drifty-public"))
        .send()
        .await
        .unwrap();
    let public_table = tables.route_tables()[0].clone();
    ec2.delete_route()
        .route_table_id(public_table.route_table_id().unwrap())
        .destination_cidr_block("0.0.0.0/0")
        .send()
        .await
        .unwrap();
    let association = public_table
        .associations()
        .iter()
        .find(|a| a.subnet_id() == Some(before.public_subnet_ids[2].as_str()))
        .unwrap();
    ec2.disassociate_route_table()
        .association_id(association.route_table_association_id().unwrap())
        .send()
        .await
        .unwrap();
    ec2.delete_security_group()
        .group_id(&before.cache_security_group_id)
        .send()
        .await
        .unwrap();
    let private_tables = ec2
        .describe_route_tables()
        .filters(f("association.subnet-id", &before.private_subnet_ids[0]))
        .send()
        .await
        .unwrap();
    for a in private_tables.route_tables()[0].associations() {
        ec2.disassociate_route_table()
            .association_id(a.route_table_association_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    ec2.delete_subnet()
        .subnet_id(&before.private_subnet_ids[0])
        .send()
        .await
        .unwrap();

    // find sees every change.
    let drifted = network::find(&ctx).await.unwrap().unwrap();
    assert!(!drifted.tags.contains_key("team"));
    assert_eq!(drifted.nat_gateway_ids.len(), 2);
    assert_eq!(drifted.private_subnet_ids.len(), 2);
    assert_eq!(drifted.cache_security_group_id, "");
    let drift = drifted.drift.join("\n");
    for expected in [
        "DNS hostnames are off",
        "no NAT gateway in zone us-east-1b",
        "no private subnet in zone us-east-1a",
        "does not send 0.0.0.0/0 to internet gateway",
        &format!(
            "public subnet {} is not associated",
            before.public_subnet_ids[2]
        ),
        "security group idis-drifty-cache is missing",
        "idis-drifty-database: extra ingress tcp 5432 from 0.0.0.0/0",
    ] {
        assert!(
            drift.contains(expected),
            "{expected:?} not in drift:\n{drift}"
        );
    }

    // ensure repairs all of it in place.
    let after = network::ensure(&ctx, &spec).await.unwrap();
    assert!(after.drift.is_empty(), "{:?}", after.drift);
    assert_eq!(after.vpc_id, before.vpc_id);
    assert_eq!(after.tags["team"], "platform");
    assert_eq!(after.nat_gateway_ids.len(), 3);
    assert_eq!(after.nat_gateway_ids[0], before.nat_gateway_ids[0]);
    assert_eq!(after.nat_gateway_ids[2], before.nat_gateway_ids[2]);
    assert_ne!(after.nat_gateway_ids[1], before.nat_gateway_ids[1]);
    assert_eq!(after.public_subnet_ids, before.public_subnet_ids);
    assert_ne!(after.private_subnet_ids[0], before.private_subnet_ids[0]);
    assert_eq!(
        after.database_security_group_id,
        before.database_security_group_id
    );
    assert_ne!(after.cache_security_group_id, "");
    assert!(dns_hostnames(&ctx, vpc).await);
    let recreated = ec2
        .describe_subnets()
        .subnet_ids(&after.private_subnet_ids[0])
        .send()
        .await
        .unwrap();
    assert_eq!(recreated.subnets()[0].cidr_block(), Some("10.0.0.0/19"));
    assert_eq!(
        recreated.subnets()[0].availability_zone(),
        Some("us-east-1a")
    );
    assert_routing(&ctx, &after, |i| after.nat_gateway_ids[i].clone()).await;
    assert_eq!(network::find(&ctx).await.unwrap().unwrap(), after);
    // The Elastic IP of the NAT gateway deleted out of band stays
    // allocated; ensure reuses it for the replacement.
    assert_eq!(count_network(&ctx).await, full_network(3));
}

#[tokio::test]
async fn a_changed_cidr_is_a_conflict_that_asks_for_replacement() {
    let moto = Moto::start();
    let ctx = moto.ctx("cidr").await;
    network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    let err = network::ensure(&ctx, &network_spec("10.1.0.0/16", false))
        .await
        .unwrap_err();
    assert!(matches!(err, ComponentError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("must be replaced"), "{err}");
    assert!(err.to_string().contains("10.0.0.0/16"), "{err}");
    // Nothing was touched.
    assert_eq!(count_network(&ctx).await, full_network(1));
}

#[tokio::test]
async fn a_killed_apply_is_adopted_not_duplicated() {
    let moto = Moto::start();
    let ctx = moto.ctx("killed").await;
    let ec2 = moto.aws().await.ec2();
    // The first apply made the VPC, an internet gateway it did not attach
    // yet, and the Elastic IP of the first NAT gateway, then died.
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Vpc)
                .set_tags(Some(ownership(&ctx, "network", "idis-killed")))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let igw = ec2
        .create_internet_gateway()
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::InternetGateway)
                .set_tags(Some(ownership(&ctx, "network", "idis-killed")))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let igw_id = igw
        .internet_gateway()
        .unwrap()
        .internet_gateway_id()
        .unwrap()
        .to_string();
    let eip = ec2
        .allocate_address()
        .domain(DomainType::Vpc)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::ElasticIp)
                .set_tags(Some(ownership(
                    &ctx,
                    "network",
                    "idis-killed-nat-us-east-1a",
                )))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let allocation = eip.allocation_id().unwrap().to_string();

    let state = network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    assert_eq!(state.vpc_id, vpc_id);
    assert_eq!(state.internet_gateway_id, igw_id);
    assert_eq!(state.nat_eip_allocation_ids, [allocation]);
    assert_eq!(count_network(&ctx).await, full_network(1));
}

#[tokio::test]
async fn delete_removes_everything_and_a_second_delete_is_a_no_op() {
    let moto = Moto::start();
    let ctx = moto.ctx("doomed").await;
    let other = moto.ctx("neighbour").await;
    let state = network::ensure(&ctx, &network_spec("10.0.0.0/16", true))
        .await
        .unwrap();
    network::ensure(&other, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();

    let warnings = network::delete(&ctx).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let ec2 = moto.aws().await.ec2();
    let none = NetworkCounts {
        vpcs: 0,
        subnets: 0,
        internet_gateways: 0,
        live_nat_gateways: 0,
        elastic_ips: 0,
        route_tables: 0,
        security_groups: 0,
    };
    assert_eq!(count_network(&ctx).await, none);
    let vpcs = ec2
        .describe_vpcs()
        .filters(f("vpc-id", &state.vpc_id))
        .send()
        .await
        .unwrap();
    assert!(vpcs.vpcs().is_empty());
    let nats = ec2
        .describe_nat_gateways()
        .set_nat_gateway_ids(Some(state.nat_gateway_ids.clone()))
        .send()
        .await
        .unwrap();
    assert!(nats
        .nat_gateways()
        .iter()
        .all(|n| n.state() == Some(&NatGatewayState::Deleted)));
    assert_eq!(network::find(&ctx).await.unwrap(), None);

    // Again: nothing to do, no error.
    assert!(network::delete(&ctx).await.unwrap().is_empty());
    assert_eq!(count_network(&ctx).await, none);
    // The neighbour environment is untouched.
    assert_eq!(count_network(&other).await, full_network(1));
    assert!(network::find(&other).await.unwrap().is_some());
}

#[tokio::test]
async fn a_foreign_subnet_stops_delete_before_anything_is_removed() {
    let moto = Moto::start();
    let ctx = moto.ctx("shared").await;
    let state = network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    let ec2 = moto.aws().await.ec2();
    let foreign = ec2
        .create_subnet()
        .vpc_id(&state.vpc_id)
        .cidr_block("10.0.112.0/20")
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    let foreign_id = foreign.subnet().unwrap().subnet_id().unwrap().to_string();

    let err = network::delete(&ctx).await.unwrap_err();
    assert!(matches!(err, ComponentError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains(&foreign_id), "{err}");
    assert_eq!(
        count_network(&ctx).await,
        full_network(1),
        "nothing removed"
    );

    ec2.delete_subnet()
        .subnet_id(&foreign_id)
        .send()
        .await
        .unwrap();
    network::delete(&ctx).await.unwrap();
    assert_eq!(network::find(&ctx).await.unwrap(), None);
}

#[tokio::test]
async fn reordering_the_zones_keeps_the_single_nat_gateway() {
    let moto = Moto::start();
    let ctx = moto.ctx("reorder").await;
    let first = network::ensure(&ctx, &network_spec("10.0.0.0/16", false))
        .await
        .unwrap();
    let mut spec = network_spec("10.0.0.0/16", false);
    spec.availability_zones.reverse();
    let second = network::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(second.nat_gateway_ids, first.nat_gateway_ids);
    assert_eq!(second.private_subnet_ids, first.private_subnet_ids);
    assert_eq!(count_network(&ctx).await, full_network(1));
}

// ---------------------------------------------------------------------------
// keys

/// Keys tagged for `env`, by `idis:tenant`, read through KMS directly.
async fn tagged_keys(ctx: &Ctx) -> BTreeMap<String, Vec<(String, KeyState)>> {
    let kms = ctx.aws.kms();
    let keys = kms.list_keys().send().await.unwrap();
    let mut out: BTreeMap<String, Vec<(String, KeyState)>> = BTreeMap::new();
    for key in keys.keys() {
        let id = key.key_id().unwrap();
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        let tags: BTreeMap<&str, &str> = tags
            .tags()
            .iter()
            .map(|t| (t.tag_key(), t.tag_value()))
            .collect();
        if tags.get("idis:environment") == Some(&ctx.env.as_str()) {
            let meta = kms.describe_key().key_id(id).send().await.unwrap();
            let state = meta.key_metadata().unwrap().key_state().unwrap().clone();
            out.entry(tags["idis:tenant"].to_string())
                .or_default()
                .push((id.to_string(), state));
        }
    }
    out
}

/// The environment's aliases, name to target key id.
async fn aliases(ctx: &Ctx) -> BTreeMap<String, String> {
    let out = ctx.aws.kms().list_aliases().send().await.unwrap();
    let prefix = format!("alias/idis/{}/", ctx.env);
    out.aliases()
        .iter()
        .filter(|a| a.alias_name().unwrap().starts_with(&prefix))
        .map(|a| {
            (
                a.alias_name().unwrap().to_string(),
                a.target_key_id().unwrap().to_string(),
            )
        })
        .collect()
}

async fn key_state(ctx: &Ctx, key_id: &str) -> KeyState {
    ctx.aws
        .kms()
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

fn key_id_of(arn: &str) -> String {
    arn.rsplit('/').next().unwrap().to_string()
}

#[tokio::test]
async fn ensure_creates_the_platform_key_and_one_key_per_tenant() {
    let moto = Moto::start();
    let ctx = moto.ctx("production").await;
    let state = keys::ensure(&ctx, &keys_spec(&["acme", "globex"]))
        .await
        .unwrap();
    support::assert_guards_hold::<keys::TenantKeys>(
        &state.verdicts,
        &keys_spec(&["acme", "globex"]),
    );
    let kms = moto.aws().await.kms();

    let aliases = aliases(&ctx).await;
    assert_eq!(
        aliases.keys().cloned().collect::<Vec<_>>(),
        [
            "alias/idis/production/acme",
            "alias/idis/production/globex",
            "alias/idis/production/platform"
        ]
    );
    for (alias, key_id) in &aliases {
        let name = alias.rsplit('/').next().unwrap();
        let meta = kms.describe_key().key_id(key_id).send().await.unwrap();
        let meta = meta.key_metadata().unwrap();
        assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
        assert_eq!(meta.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
        assert_eq!(meta.key_spec(), Some(&KeySpec::SymmetricDefault));
        let description = meta.description().unwrap();
        assert!(
            description.contains("production") && description.contains(name),
            "{description}"
        );
        let rotation = kms
            .get_key_rotation_status()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled(), "rotation of {alias}");
        let tags = kms
            .list_resource_tags()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        let tags: BTreeMap<&str, &str> = tags
            .tags()
            .iter()
            .map(|t| (t.tag_key(), t.tag_value()))
            .collect();
        assert_eq!(tags["idis:tenant"], name);
        assert_eq!(tags["idis:environment"], "production");
        assert_eq!(tags["idis:component"], "keys");
        assert_eq!(tags["managed-by"], "terraform-provider-idis");
        assert_eq!(tags["team"], "platform");
    }

    assert_eq!(
        key_id_of(&state.platform_key_arn),
        aliases["alias/idis/production/platform"]
    );
    assert_eq!(
        state.platform_key_id,
        aliases["alias/idis/production/platform"]
    );
    assert_eq!(state.tenant_key_arns.len(), 2);
    assert_eq!(
        key_id_of(&state.tenant_key_arns["acme"]),
        aliases["alias/idis/production/acme"]
    );
    assert!(state.rotation_enabled);
    assert!(state.disabled_keys.is_empty());
}

#[tokio::test]
async fn ensure_twice_makes_no_new_key_and_find_reads_the_same_state() {
    let moto = Moto::start();
    let ctx = moto.ctx("staging").await;
    assert_eq!(keys::find(&ctx).await.unwrap(), None);
    let spec = keys_spec(&["acme"]);
    let first = keys::ensure(&ctx, &spec).await.unwrap();
    let second = keys::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(keys::find(&ctx).await.unwrap(), Some(first));
    let tagged = tagged_keys(&ctx).await;
    assert_eq!(tagged.len(), 2);
    assert!(tagged.values().all(|keys| keys.len() == 1));
}

#[tokio::test]
async fn rotation_turned_off_out_of_band_is_seen_and_turned_back_on() {
    let moto = Moto::start();
    let ctx = moto.ctx("rotation").await;
    let spec = keys_spec(&["acme"]);
    let state = keys::ensure(&ctx, &spec).await.unwrap();
    let acme = key_id_of(&state.tenant_key_arns["acme"]);
    let kms = moto.aws().await.kms();
    kms.disable_key_rotation()
        .key_id(&acme)
        .send()
        .await
        .unwrap();

    let found = keys::find(&ctx).await.unwrap().unwrap();
    assert!(!found.rotation_enabled);

    let repaired = keys::ensure(&ctx, &spec).await.unwrap();
    assert!(repaired.rotation_enabled);
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&acme)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());
    assert_eq!(repaired, state);
}

#[tokio::test]
async fn a_deleted_alias_is_recreated_on_the_same_key() {
    let moto = Moto::start();
    let ctx = moto.ctx("alias").await;
    let spec = keys_spec(&["acme"]);
    let state = keys::ensure(&ctx, &spec).await.unwrap();
    let kms = moto.aws().await.kms();
    kms.delete_alias()
        .alias_name("alias/idis/alias/acme")
        .send()
        .await
        .unwrap();

    let found = keys::find(&ctx).await.unwrap().unwrap();
    assert!(!found.tenant_key_arns.contains_key("acme"));

    let repaired = keys::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(
        repaired.tenant_key_arns["acme"],
        state.tenant_key_arns["acme"]
    );
    assert_eq!(
        aliases(&ctx).await["alias/idis/alias/acme"],
        key_id_of(&state.tenant_key_arns["acme"])
    );
    assert_eq!(
        tagged_keys(&ctx).await["acme"].len(),
        1,
        "no second key for acme"
    );
}

#[tokio::test]
async fn a_key_made_by_a_killed_apply_is_adopted() {
    let moto = Moto::start();
    let ctx = moto.ctx("killed").await;
    let kms = moto.aws().await.kms();
    // The killed apply created acme's key (tagged) but not its alias.
    let tags = ctx
        .tags("keys")
        .into_iter()
        .chain([("idis:tenant".to_string(), "acme".to_string())])
        .map(|(k, v)| {
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .unwrap()
        })
        .collect();
    let orphan = kms
        .create_key()
        .description("IDIS environment killed: key of tenant acme")
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    let orphan_id = orphan.key_metadata().unwrap().key_id().to_string();

    let state = keys::ensure(&ctx, &keys_spec(&["acme"])).await.unwrap();
    assert_eq!(key_id_of(&state.tenant_key_arns["acme"]), orphan_id);
    assert!(
        state.rotation_enabled,
        "rotation turned on for the adopted key"
    );
    assert_eq!(tagged_keys(&ctx).await["acme"].len(), 1);
}

#[tokio::test]
async fn a_removed_tenant_key_is_scheduled_for_deletion_and_comes_back_if_wanted_again() {
    let moto = Moto::start();
    let ctx = moto.ctx("tenants").await;
    let state = keys::ensure(&ctx, &keys_spec(&["acme", "globex"]))
        .await
        .unwrap();
    let globex = key_id_of(&state.tenant_key_arns["globex"]);

    let spec = KeysSpec {
        deletion_window_days: 10,
        ..keys_spec(&["acme"])
    };
    let shrunk = keys::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(shrunk.tenant_key_arns.keys().collect::<Vec<_>>(), ["acme"]);
    assert!(!aliases(&ctx)
        .await
        .contains_key("alias/idis/tenants/globex"));
    let meta = moto
        .aws()
        .await
        .kms()
        .describe_key()
        .key_id(&globex)
        .send()
        .await
        .unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(
        meta.key_state(),
        Some(&KeyState::PendingDeletion),
        "scheduled, never deleted at once"
    );
    let days = (meta.deletion_date().unwrap().secs()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64)
        / 86_400;
    assert!((9..=10).contains(&days), "deletion in {days} days");
    assert_eq!(keys::find(&ctx).await.unwrap(), Some(shrunk.clone()));

    // globex signs back: its old key returns, so its data stays readable.
    let back = keys::ensure(&ctx, &keys_spec(&["acme", "globex"]))
        .await
        .unwrap();
    assert_eq!(key_id_of(&back.tenant_key_arns["globex"]), globex);
    assert_eq!(key_state(&ctx, &globex).await, KeyState::Enabled);
    assert_eq!(back, state);
}

#[tokio::test]
async fn a_key_scheduled_or_disabled_out_of_band_is_brought_back() {
    let moto = Moto::start();
    let ctx = moto.ctx("oob").await;
    let spec = keys_spec(&["acme", "globex"]);
    let state = keys::ensure(&ctx, &spec).await.unwrap();
    let acme = key_id_of(&state.tenant_key_arns["acme"]);
    let globex = key_id_of(&state.tenant_key_arns["globex"]);
    let kms = moto.aws().await.kms();
    kms.schedule_key_deletion()
        .key_id(&acme)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&globex).send().await.unwrap();

    let found = keys::find(&ctx).await.unwrap().unwrap();
    assert!(
        !found.tenant_key_arns.contains_key("acme"),
        "pending deletion counts as gone"
    );
    assert_eq!(found.disabled_keys, ["globex"]);

    let repaired = keys::ensure(&ctx, &spec).await.unwrap();
    assert_eq!(repaired, state);
    assert_eq!(key_state(&ctx, &acme).await, KeyState::Enabled);
    assert_eq!(key_state(&ctx, &globex).await, KeyState::Enabled);
}

#[tokio::test]
async fn delete_schedules_every_key_and_a_second_delete_changes_nothing() {
    let moto = Moto::start();
    let ctx = moto.ctx("doomed").await;
    let neighbour = moto.ctx("neighbour").await;
    let spec = keys_spec(&["acme", "globex"]);
    keys::ensure(&ctx, &spec).await.unwrap();
    let kept = keys::ensure(&neighbour, &keys_spec(&["acme"]))
        .await
        .unwrap();

    let warnings = keys::delete(&ctx, &spec).await.unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("3 KMS key(s) of environment doomed are pending deletion"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("AWS deletes them by 20"),
        "{}",
        warnings[0]
    );
    assert!(aliases(&ctx).await.is_empty());
    let tagged = tagged_keys(&ctx).await;
    assert_eq!(tagged.len(), 3);
    assert!(tagged
        .values()
        .flatten()
        .all(|(_, state)| *state == KeyState::PendingDeletion));
    assert_eq!(keys::find(&ctx).await.unwrap(), None);

    // A second delete schedules nothing new and still reports the keys.
    let again = keys::delete(&ctx, &spec).await.unwrap();
    assert!(again[0].starts_with("3 KMS key(s)"), "{again:?}");
    assert_eq!(tagged_keys(&ctx).await, tagged);

    // Another environment shares no key and is untouched.
    assert_eq!(keys::find(&neighbour).await.unwrap(), Some(kept));
}
