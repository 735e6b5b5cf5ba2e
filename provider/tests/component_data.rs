//! The database (RDS PostgreSQL) and cache (ElastiCache Redis) components
//! against moto, checked through the AWS SDK directly.
//!
//! Where moto 5.2.5 leaves out a part of AWS's behaviour (an ElastiCache
//! group it deletes stays "deleting" forever; DeleteCacheSubnetGroup does
//! not exist; nothing is ever "creating"), the tests that need it run
//! through `lifecycle::Proxy`, a small HTTP proxy that plays AWS's part and
//! says so in its name. Tests that show a moto gap say so in theirs.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::Moto;
use terraform_provider_idis::components::cache::CacheSpec;
use terraform_provider_idis::components::database::DatabaseSpec;
use terraform_provider_idis::components::keys::KeysState;
use terraform_provider_idis::components::network::NetworkState;
use terraform_provider_idis::components::{cache, database, ComponentError, Ctx};
use terraform_provider_idis::provider::config::{Aws, ProviderConfig};
use tokio_util::sync::CancellationToken;

const ENV: &str = "data-test";

/// A VPC with three private subnets in three zones, the database and cache
/// security groups, and a platform KMS key, made with the SDK as the
/// network and keys components would.
/// The tags the network component gives an object named `name`.
fn owned(
    kind: aws_sdk_ec2::types::ResourceType,
    name: &str,
) -> aws_sdk_ec2::types::TagSpecification {
    let tag = |k: &str, v: &str| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build();
    aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(kind)
        .tags(tag("idis:environment", ENV))
        .tags(tag("idis:component", "network"))
        .tags(tag("Name", name))
        .build()
}

/// A network and keys as those components make them: subnets and groups
/// named and tagged, the platform key behind its alias.
async fn network_and_keys(aws: &Aws) -> (NetworkState, KeysState) {
    let ec2 = aws.ec2();
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.42.0.0/16")
        .send()
        .await
        .expect("create VPC");
    let vpc_id = vpc
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    let mut private_subnet_ids = Vec::new();
    let zones = ["us-east-1a", "us-east-1b", "us-east-1c"];
    for (i, zone) in zones.iter().enumerate() {
        let subnet = ec2
            .create_subnet()
            .vpc_id(&vpc_id)
            .cidr_block(format!("10.42.{}.0/24", i + 10))
            .availability_zone(*zone)
            .tag_specifications(owned(
                aws_sdk_ec2::types::ResourceType::Subnet,
                &format!("idis-{ENV}-private-{zone}"),
            ))
            .send()
            .await
            .expect("create subnet");
        private_subnet_ids.push(
            subnet
                .subnet()
                .and_then(|s| s.subnet_id())
                .expect("subnet id")
                .to_string(),
        );
    }
    let mut groups = Vec::new();
    for name in ["database", "cache"] {
        let sg = ec2
            .create_security_group()
            .group_name(format!("idis-{ENV}-{name}"))
            .description(format!("{name} of {ENV}"))
            .vpc_id(&vpc_id)
            .tag_specifications(owned(
                aws_sdk_ec2::types::ResourceType::SecurityGroup,
                &format!("idis-{ENV}-{name}"),
            ))
            .send()
            .await
            .expect("create security group");
        groups.push(sg.group_id().expect("group id").to_string());
    }
    let key = aws
        .kms()
        .create_key()
        .description("platform key")
        .send()
        .await
        .expect("create KMS key");
    let meta = key.key_metadata().expect("key metadata");
    aws.kms()
        .create_alias()
        .alias_name(format!("alias/idis/{ENV}/platform"))
        .target_key_id(meta.key_id())
        .send()
        .await
        .expect("create alias");
    let network = NetworkState {
        vpc_id,
        vpc_cidr: "10.42.0.0/16".to_string(),
        availability_zones: zones.iter().map(|z| z.to_string()).collect(),
        private_subnet_ids,
        database_security_group_id: groups[0].clone(),
        cache_security_group_id: groups[1].clone(),
        ..NetworkState::default()
    };
    let keys = KeysState {
        platform_key_arn: meta.arn().expect("key arn").to_string(),
        platform_key_id: meta.key_id().to_string(),
        ..KeysState::default()
    };
    (network, keys)
}

fn db_spec() -> DatabaseSpec {
    DatabaseSpec {
        engine_version: "16".to_string(),
        instance_class: "db.r6g.large".to_string(),
        multi_az: true,
        allocated_storage_gb: 100,
        backup_retention_days: 30,
        deletion_protection: false,
        skip_final_snapshot: false,
        performance_insights: false,
        read_replicas: 2,
        master_username: "idis_admin".to_string(),
        database_name: "idis".to_string(),
    }
}

fn cache_spec() -> CacheSpec {
    CacheSpec {
        engine: "redis".to_string(),
        engine_version: "7.1".to_string(),
        node_type: "cache.r6g.large".to_string(),
        node_count: 3,
        multi_az: true,
        snapshot_retention_days: 7,
    }
}

/// A context like `Moto::ctx`, but reaching AWS through `endpoint`.
async fn ctx_at(endpoint: &str) -> Ctx {
    let aws = Arc::new(
        Aws::connect(
            ProviderConfig::emulator(endpoint, "us-east-1"),
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|d| panic!("provider configuration failed: {d:?}")),
    );
    let account_id = aws.account_id().await.expect("account id");
    Ctx {
        region: aws.region.clone(),
        aws,
        env: ENV.to_string(),
        account_id,
        user_tags: BTreeMap::from([("team".to_string(), "platform".to_string())]),
        cancel: CancellationToken::new(),
        deadline: Instant::now() + Duration::from_secs(300),
        poll_interval: Duration::from_millis(50),
        dr_site: false,
    }
}

fn tags_of_rds(tags: &[aws_sdk_rds::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn assert_owned(tags: &BTreeMap<String, String>, component: &str) {
    assert_eq!(
        tags.get("idis:environment").map(String::as_str),
        Some(ENV),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("idis:component").map(String::as_str),
        Some(component),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("managed-by").map(String::as_str),
        Some("terraform-provider-idis"),
        "{tags:?}"
    );
    assert_eq!(
        tags.get("team").map(String::as_str),
        Some("platform"),
        "{tags:?}"
    );
}

/// Every DB instance AWS knows, by identifier.
async fn db_instances(aws: &Aws) -> BTreeMap<String, aws_sdk_rds::types::DbInstance> {
    aws.rds()
        .describe_db_instances()
        .send()
        .await
        .expect("describe DB instances")
        .db_instances()
        .iter()
        .map(|d| {
            (
                d.db_instance_identifier().unwrap_or_default().to_string(),
                d.clone(),
            )
        })
        .collect()
}

/// DB instances carrying this environment's ownership tag.
async fn owned_db_instances(aws: &Aws) -> Vec<String> {
    db_instances(aws)
        .await
        .into_iter()
        .filter(|(_, d)| {
            tags_of_rds(d.tag_list())
                .get("idis:environment")
                .map(String::as_str)
                == Some(ENV)
        })
        .map(|(id, _)| id)
        .collect()
}

fn db_id() -> String {
    format!("idis-{ENV}-db")
}

fn replica_id(n: i64) -> String {
    format!("idis-{ENV}-db-replica-{n}")
}

// ---------------------------------------------------------------- database

#[tokio::test]
async fn ensure_builds_the_database_with_the_specs_values() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();

    let state = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure database");
    support::assert_guards_hold::<database::Database>(&state.verdicts, &spec);

    let all = db_instances(&aws).await;
    let db = all.get(&db_id()).expect("primary exists");
    assert_eq!(db.engine(), Some("postgres"));
    assert!(db.engine_version().unwrap_or_default().starts_with("16"));
    assert_eq!(db.db_instance_class(), Some("db.r6g.large"));
    assert_eq!(db.multi_az(), Some(true));
    assert_eq!(db.allocated_storage(), Some(100));
    assert_eq!(db.storage_type(), Some("gp3"));
    assert_eq!(db.storage_encrypted(), Some(true));
    assert_eq!(db.kms_key_id(), Some(keys.platform_key_arn.as_str()));
    assert_eq!(db.master_username(), Some("idis_admin"));
    assert_eq!(db.db_name(), Some("idis"));
    assert_eq!(db.backup_retention_period(), Some(30));
    assert_eq!(db.deletion_protection(), Some(false));
    assert_eq!(db.copy_tags_to_snapshot(), Some(true));
    assert_eq!(db.publicly_accessible(), Some(false));
    let sgs: Vec<&str> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id())
        .collect();
    assert_eq!(sgs, [network.database_security_group_id.as_str()]);
    assert_eq!(
        db.db_subnet_group().and_then(|g| g.db_subnet_group_name()),
        Some(db_id().as_str())
    );
    assert_owned(&tags_of_rds(db.tag_list()), "database");

    // The password is AWS's: a managed secret encrypted with the platform key.
    let secret = db.master_user_secret().expect("managed master user secret");
    assert_eq!(secret.kms_key_id(), Some(keys.platform_key_arn.as_str()));
    let secret_arn = secret.secret_arn().expect("secret arn");
    assert_eq!(state.master_secret_arn.as_deref(), Some(secret_arn));
    aws.secretsmanager()
        .describe_secret()
        .secret_id(secret_arn)
        .send()
        .await
        .expect("the master secret exists in Secrets Manager");

    // The subnet group spans the three private subnets.
    let groups = aws
        .rds()
        .describe_db_subnet_groups()
        .db_subnet_group_name(db_id())
        .send()
        .await
        .expect("subnet group exists");
    let mut subnets: Vec<String> = groups.db_subnet_groups()[0]
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier().map(str::to_string))
        .collect();
    subnets.sort();
    let mut wanted = network.private_subnet_ids.clone();
    wanted.sort();
    assert_eq!(subnets, wanted);

    // Two read replicas of the primary, numbered from 1, in the database SG.
    for n in 1..=2 {
        let replica = all.get(&replica_id(n)).expect("replica exists");
        assert_eq!(
            replica.read_replica_source_db_instance_identifier(),
            Some(db_id().as_str())
        );
        assert_eq!(replica.db_instance_class(), Some("db.r6g.large"));
        assert_eq!(replica.publicly_accessible(), Some(false));
        assert_owned(&tags_of_rds(replica.tag_list()), "database");
    }
    assert!(!all.contains_key(&replica_id(3)));

    assert_eq!(state.identifier, db_id());
    assert_eq!(state.arn, db.db_instance_arn().unwrap_or_default());
    assert_eq!(
        state.endpoint.as_deref(),
        db.endpoint().and_then(|e| e.address())
    );
    assert_eq!(state.port, 5432);
    assert_eq!(
        state.replica_endpoints,
        (1..=2)
            .map(|n| all[&replica_id(n)]
                .endpoint()
                .and_then(|e| e.address())
                .unwrap_or_default()
                .to_string())
            .collect::<Vec<_>>()
    );
    assert!(state.storage_encrypted);
}

#[tokio::test]
async fn ensuring_the_database_twice_creates_nothing_new() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();

    let first = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("first ensure");
    let second = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("second ensure");

    assert_eq!(first, second);
    let mut owned = owned_db_instances(&aws).await;
    owned.sort();
    assert_eq!(owned, vec![db_id(), replica_id(1), replica_id(2)]);
    let groups = aws
        .rds()
        .describe_db_subnet_groups()
        .send()
        .await
        .expect("subnet groups");
    assert_eq!(groups.db_subnet_groups().len(), 1);
}

#[tokio::test]
async fn find_reads_back_every_database_setting() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();

    assert_eq!(database::find(&ctx).await.expect("find before"), None);
    let ensured = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    let found = database::find(&ctx)
        .await
        .expect("find")
        .expect("database found");

    assert_eq!(found, ensured);
    assert_eq!(found.instance_class, spec.instance_class);
    assert_eq!(found.multi_az, spec.multi_az);
    assert_eq!(found.allocated_storage_gb, spec.allocated_storage_gb);
    assert_eq!(found.backup_retention_days, spec.backup_retention_days);
    assert_eq!(found.deletion_protection, spec.deletion_protection);
    assert_eq!(found.performance_insights, spec.performance_insights);
    assert_eq!(found.master_username, spec.master_username);
    assert_eq!(
        found.database_name.as_deref(),
        Some(spec.database_name.as_str())
    );
    assert_eq!(found.replica_endpoints.len(), 2);
    assert!(found.engine_version_actual.starts_with("16"));
    assert_eq!(
        found.tags,
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );
}

#[tokio::test]
async fn database_drift_made_outside_terraform_is_seen_and_repaired() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    // Someone changes the primary by hand, deletes a replica and a tag.
    let rds = aws.rds();
    let primary = db_instances(&aws).await[&db_id()].clone();
    rds.modify_db_instance()
        .db_instance_identifier(db_id())
        .db_instance_class("db.t3.micro")
        .multi_az(false)
        .backup_retention_period(1)
        .deletion_protection(true)
        .copy_tags_to_snapshot(false)
        .apply_immediately(true)
        .send()
        .await
        .expect("out-of-band modify");
    rds.remove_tags_from_resource()
        .resource_name(primary.db_instance_arn().unwrap_or_default())
        .tag_keys("team")
        .send()
        .await
        .expect("remove a tag");
    rds.delete_db_instance()
        .db_instance_identifier(replica_id(2))
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete a replica");

    let drifted = database::find(&ctx).await.expect("find").expect("found");
    assert_eq!(drifted.instance_class, "db.t3.micro");
    assert!(!drifted.multi_az);
    assert_eq!(drifted.backup_retention_days, 1);
    assert!(drifted.deletion_protection);
    assert_eq!(drifted.replica_endpoints.len(), 1);
    assert!(drifted.tags.is_empty());

    let repaired = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure repairs");
    assert_eq!(repaired.instance_class, "db.r6g.large");
    assert!(repaired.multi_az);
    assert_eq!(repaired.backup_retention_days, 30);
    assert!(!repaired.deletion_protection);
    assert_eq!(repaired.replica_endpoints.len(), 2);

    let all = db_instances(&aws).await;
    let db = &all[&db_id()];
    assert_eq!(db.db_instance_class(), Some("db.r6g.large"));
    assert_eq!(db.multi_az(), Some(true));
    assert_eq!(db.backup_retention_period(), Some(30));
    assert_eq!(db.deletion_protection(), Some(false));
    assert_eq!(db.copy_tags_to_snapshot(), Some(true));
    assert_owned(&tags_of_rds(db.tag_list()), "database");
    assert!(
        all.contains_key(&replica_id(2)),
        "the deleted replica is back"
    );
    assert_eq!(database::find(&ctx).await.expect("find"), Some(repaired));
}

#[tokio::test]
async fn database_storage_only_grows_and_a_shrink_is_refused_with_both_sizes() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 0;
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    spec.allocated_storage_gb = 200;
    let grown = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("grow storage");
    assert_eq!(grown.allocated_storage_gb, 200);
    assert_eq!(
        db_instances(&aws).await[&db_id()].allocated_storage(),
        Some(200)
    );

    spec.allocated_storage_gb = 50;
    let err = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect_err("shrinking must be refused");
    let text = err.to_string();
    assert!(matches!(err, ComponentError::Conflict { .. }), "{text}");
    assert!(text.contains("200") && text.contains("50"), "{text}");
    assert_eq!(
        db_instances(&aws).await[&db_id()].allocated_storage(),
        Some(200)
    );
}

#[tokio::test]
async fn database_engine_versions_upgrade_in_place_and_never_downgrade() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 0;
    spec.engine_version = "15".to_string();
    let state = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    assert!(state.engine_version_actual.starts_with("15"));

    // A full version within a newer major: a major upgrade.
    spec.engine_version = "16.8".to_string();
    let upgraded = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("upgrade");
    assert_eq!(upgraded.engine_version_actual, "16.8");
    assert_eq!(
        db_instances(&aws).await[&db_id()].engine_version(),
        Some("16.8")
    );

    // "16" is satisfied by 16.4: nothing happens.
    spec.engine_version = "16".to_string();
    let same = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("major only");
    assert_eq!(same.engine_version_actual, "16.8");

    // Going back is refused, naming both versions.
    spec.engine_version = "15".to_string();
    let err = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect_err("downgrade refused");
    let text = err.to_string();
    assert!(text.contains("16.8") && text.contains("\"15\""), "{text}");
}

#[tokio::test]
async fn fewer_read_replicas_remove_the_highest_numbered_ones() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 3;
    let three = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("three replicas");
    assert_eq!(three.replica_endpoints.len(), 3);

    spec.read_replicas = 1;
    let one = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("one replica");
    assert_eq!(one.replica_endpoints, three.replica_endpoints[..1].to_vec());
    let all = db_instances(&aws).await;
    assert!(all.contains_key(&replica_id(1)));
    assert!(!all.contains_key(&replica_id(2)));
    assert!(!all.contains_key(&replica_id(3)));
    // Replicas hold no data of their own: no snapshot was taken of them.
    let snapshots = aws
        .rds()
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("snapshots");
    assert!(snapshots.db_snapshots().is_empty());
}

#[tokio::test]
async fn a_killed_apply_is_adopted_not_duplicated() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();

    // The previous apply got as far as the subnet group and the primary
    // (without our user tag) before it was killed.
    let rds = aws.rds();
    rds.create_db_subnet_group()
        .db_subnet_group_name(db_id())
        .db_subnet_group_description("left over")
        .set_subnet_ids(Some(network.private_subnet_ids.clone()))
        .send()
        .await
        .expect("subnet group");
    rds.create_db_instance()
        .db_instance_identifier(db_id())
        .engine("postgres")
        .engine_version("16")
        .db_instance_class("db.r6g.large")
        .multi_az(true)
        .allocated_storage(100)
        .storage_type("gp3")
        .storage_encrypted(true)
        .kms_key_id(&keys.platform_key_arn)
        .manage_master_user_password(true)
        .master_user_secret_kms_key_id(&keys.platform_key_arn)
        .master_username("idis_admin")
        .db_name("idis")
        .backup_retention_period(30)
        .copy_tags_to_snapshot(true)
        .publicly_accessible(false)
        .vpc_security_group_ids(&network.database_security_group_id)
        .db_subnet_group_name(db_id())
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("idis:environment")
                .value(ENV)
                .build(),
        )
        .send()
        .await
        .expect("primary");

    let state = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure adopts");
    let mut owned = owned_db_instances(&aws).await;
    owned.sort();
    assert_eq!(owned, vec![db_id(), replica_id(1), replica_id(2)]);
    assert_eq!(state.identifier, db_id());
    assert_owned(
        &tags_of_rds(db_instances(&aws).await[&db_id()].tag_list()),
        "database",
    );
    let groups = rds
        .describe_db_subnet_groups()
        .send()
        .await
        .expect("groups");
    assert_eq!(groups.db_subnet_groups().len(), 1);
}

#[tokio::test]
async fn an_unencrypted_database_is_not_adopted_silently() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 0;
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    // Someone replaced it with an unencrypted instance of the same name.
    let rds = aws.rds();
    rds.delete_db_instance()
        .db_instance_identifier(db_id())
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete by hand");
    rds.create_db_instance()
        .db_instance_identifier(db_id())
        .engine("postgres")
        .engine_version("16")
        .db_instance_class("db.r6g.large")
        .allocated_storage(100)
        .master_username("idis_admin")
        .db_name("idis")
        .manage_master_user_password(true)
        .db_subnet_group_name(db_id())
        .send()
        .await
        .expect("unencrypted instance");

    let err = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect_err("cannot encrypt in place");
    assert!(matches!(err, ComponentError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("unencrypted"), "{err}");
}

#[tokio::test]
async fn delete_refuses_while_deletion_protection_is_on() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.deletion_protection = true;
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    let err = database::delete(&ctx, &spec)
        .await
        .expect_err("protected database is not deleted");
    let text = err.to_string();
    assert!(matches!(err, ComponentError::Conflict { .. }), "{text}");
    assert!(
        text.contains("database.deletion_protection = false"),
        "{text}"
    );
    let all = db_instances(&aws).await;
    assert!(all.contains_key(&db_id()));
    assert!(all.contains_key(&replica_id(1)), "replicas are kept too");

    // Turning it off through the spec, then destroying, works.
    spec.deletion_protection = false;
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("turn protection off");
    database::delete(&ctx, &spec).await.expect("delete");
    assert!(db_instances(&aws).await.is_empty());
}

#[tokio::test]
async fn delete_removes_the_database_and_keeps_a_final_snapshot() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = db_spec();
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    let warnings = database::delete(&ctx, &spec).await.expect("delete");

    assert!(
        db_instances(&aws).await.is_empty(),
        "primary and replicas gone"
    );
    let groups = aws
        .rds()
        .describe_db_subnet_groups()
        .send()
        .await
        .expect("groups");
    assert!(groups.db_subnet_groups().is_empty(), "subnet group gone");
    let snapshots = aws
        .rds()
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("snapshots");
    let names: Vec<&str> = snapshots
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let prefix = format!("{}-final-", db_id());
    assert!(names[0].starts_with(&prefix), "{names:?}");
    assert!(
        warnings.iter().any(|w| w.contains(names[0])),
        "the warning names the snapshot: {warnings:?}"
    );

    assert_eq!(database::find(&ctx).await.expect("find"), None);
    let again = database::delete(&ctx, &spec).await.expect("second delete");
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn delete_with_skip_final_snapshot_leaves_no_snapshot() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 0;
    spec.skip_final_snapshot = true;
    database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    let warnings = database::delete(&ctx, &spec).await.expect("delete");
    assert!(warnings.is_empty(), "{warnings:?}");
    let snapshots = aws
        .rds()
        .describe_db_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("snapshots");
    assert!(snapshots.db_snapshots().is_empty());
    assert_eq!(database::find(&ctx).await.expect("find"), None);
}

#[tokio::test]
async fn ensure_waits_while_rds_reports_creating() {
    let moto = Moto::start();
    let proxy = lifecycle::Proxy::start(&moto.moto_endpoint, 3).await;
    let ctx = ctx_at(&proxy.endpoint).await;
    let (network, keys) = network_and_keys(&ctx.aws).await;
    let mut spec = db_spec();
    spec.read_replicas = 1;

    let state = database::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    assert_eq!(state.replica_endpoints.len(), 1);
    // Each instance was polled until its three "creating" answers ran out.
    assert_eq!(proxy.creating_reads_left(&db_id()), Some(0));
    assert_eq!(proxy.creating_reads_left(&replica_id(1)), Some(0));
    // The replica was created only after the primary became available.
    let calls = proxy.calls();
    let replica_created = calls
        .iter()
        .position(|c| c == "CreateDBInstanceReadReplica")
        .expect("replica created");
    let primary_created = calls
        .iter()
        .position(|c| c == "CreateDBInstance")
        .expect("primary created");
    let polls_between = calls[primary_created..replica_created]
        .iter()
        .filter(|c| *c == "DescribeDBInstances")
        .count();
    assert!(polls_between >= 4, "{calls:?}");
}

#[tokio::test]
async fn a_refresh_reads_each_component_in_one_round_of_calls() {
    let moto = Moto::start();
    let proxy = lifecycle::Proxy::start(&moto.moto_endpoint, 0).await;
    let ctx = ctx_at(&proxy.endpoint).await;
    let (network, keys) = network_and_keys(&ctx.aws).await;
    database::ensure(&ctx, &db_spec(), &network, &keys)
        .await
        .expect("ensure database");
    cache::ensure(&ctx, &cache_spec(), &network, &keys)
        .await
        .expect("ensure cache");

    let before = proxy.calls().len();
    database::find(&ctx).await.expect("find database");
    let mut database_calls = proxy.calls()[before..].to_vec();
    database_calls.sort();
    // The primary and every replica in one DescribeDBInstances, beside
    // what they are judged against (the platform key, the private subnets,
    // the security groups), sent concurrently.
    assert_eq!(
        database_calls,
        [
            "DescribeDBInstances",
            "DescribeKey",
            "DescribeSecurityGroups",
            "DescribeSubnets"
        ]
    );

    let before = proxy.calls().len();
    cache::find(&ctx).await.expect("find cache");
    let mut cache_calls = proxy.calls()[before..].to_vec();
    cache_calls.sort();
    // Independent reads, sent concurrently.
    assert_eq!(
        cache_calls,
        [
            "DescribeCacheClusters",
            "DescribeCacheSubnetGroups",
            "DescribeKey",
            "DescribeReplicationGroups",
            "DescribeSecret",
            "DescribeSecurityGroups",
            "DescribeSubnets",
            "ListTagsForResource"
        ]
    );
}

// ------------------------------------------------------------------- cache

async fn replication_group(aws: &Aws, id: &str) -> aws_sdk_elasticache::types::ReplicationGroup {
    aws.elasticache()
        .describe_replication_groups()
        .replication_group_id(id)
        .send()
        .await
        .expect("describe replication group")
        .replication_groups()[0]
        .clone()
}

async fn elasticache_tags(aws: &Aws, arn: &str) -> BTreeMap<String, String> {
    aws.elasticache()
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .expect("list tags")
        .tag_list()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn secret_value(aws: &Aws, name: &str) -> String {
    aws.secretsmanager()
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .expect("get secret value")
        .secret_string()
        .expect("secret string")
        .to_string()
}

fn cache_id() -> String {
    format!("idis-{ENV}-cache")
}

fn secret_name() -> String {
    format!("idis/{ENV}/cache-auth-token")
}

#[tokio::test]
async fn ensure_builds_the_cache_with_the_specs_values() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();

    let state = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure cache");
    support::assert_guards_hold::<cache::Cache>(&state.verdicts, &spec);

    let group = replication_group(&aws, &cache_id()).await;
    assert_eq!(group.status(), Some("available"));
    assert_eq!(group.cache_node_type(), Some("cache.r6g.large"));
    assert_eq!(group.member_clusters().len(), 3);
    assert_eq!(
        group.multi_az(),
        Some(&aws_sdk_elasticache::types::MultiAzStatus::Enabled)
    );
    assert_eq!(
        group.automatic_failover(),
        Some(&aws_sdk_elasticache::types::AutomaticFailoverStatus::Enabled)
    );
    assert_eq!(group.at_rest_encryption_enabled(), Some(true));
    assert_eq!(group.transit_encryption_enabled(), Some(true));
    assert_eq!(group.auth_token_enabled(), Some(true));
    assert_eq!(group.kms_key_id(), Some(keys.platform_key_arn.as_str()));
    assert_eq!(group.snapshot_retention_limit(), Some(7));
    assert_eq!(group.cluster_enabled(), Some(false));
    assert_owned(
        &elasticache_tags(&aws, group.arn().unwrap_or_default()).await,
        "cache",
    );

    let subnet_groups = aws
        .elasticache()
        .describe_cache_subnet_groups()
        .cache_subnet_group_name(cache_id())
        .send()
        .await
        .expect("cache subnet group");
    let subnet_group = &subnet_groups.cache_subnet_groups()[0];
    let mut subnets: Vec<String> = subnet_group
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier().map(str::to_string))
        .collect();
    subnets.sort();
    let mut wanted = network.private_subnet_ids.clone();
    wanted.sort();
    assert_eq!(subnets, wanted);

    // The auth token: 64 letters and digits in a secret under the platform key.
    let secret = aws
        .secretsmanager()
        .describe_secret()
        .secret_id(secret_name())
        .send()
        .await
        .expect("auth token secret");
    assert_eq!(secret.kms_key_id(), Some(keys.platform_key_arn.as_str()));
    let secret_tags: BTreeMap<String, String> = secret
        .tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap_or_default().to_string(),
                t.value().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_owned(&secret_tags, "cache");
    let token = secret_value(&aws, &secret_name()).await;
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(state.auth_secret_arn.as_deref(), secret.arn());
    let serialized = serde_json::to_string(&state).expect("state serializes");
    assert!(
        !serialized.contains(&token),
        "the token never enters the state"
    );

    assert_eq!(state.replication_group_id, cache_id());
    assert_eq!(
        state.primary_endpoint.as_deref(),
        group.node_groups()[0]
            .primary_endpoint()
            .and_then(|e| e.address())
    );
    assert_eq!(state.port, 6379);
    assert_eq!(state.node_count, 3);
    assert!(state.multi_az && state.automatic_failover);
    assert!(state.at_rest_encryption && state.transit_encryption);
    // moto 5.2.5 reports no engine version for a replication group.
    assert!(state
        .engine_version_actual
        .as_deref()
        .is_none_or(|v| v.starts_with("7.1")));
}

#[tokio::test]
async fn ensuring_the_cache_twice_creates_nothing_new_and_keeps_the_token() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();

    let first = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("first ensure");
    let token = secret_value(&aws, &secret_name()).await;
    let second = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("second ensure");

    assert_eq!(first, second);
    assert_eq!(secret_value(&aws, &secret_name()).await, token);
    let groups = aws
        .elasticache()
        .describe_replication_groups()
        .send()
        .await
        .expect("groups");
    let mut owned = 0;
    for group in groups.replication_groups() {
        let tags = elasticache_tags(&aws, group.arn().unwrap_or_default()).await;
        if tags.get("idis:environment").map(String::as_str) == Some(ENV) {
            owned += 1;
        }
    }
    assert_eq!(owned, 1);
    let secrets = aws
        .secretsmanager()
        .list_secrets()
        .send()
        .await
        .expect("secrets");
    let named = secrets
        .secret_list()
        .iter()
        .filter(|s| s.name() == Some(secret_name().as_str()))
        .count();
    assert_eq!(named, 1);
    let subnet_groups = aws
        .elasticache()
        .describe_cache_subnet_groups()
        .send()
        .await
        .expect("subnet groups");
    assert_eq!(subnet_groups.cache_subnet_groups().len(), 1);
}

#[tokio::test]
async fn find_reads_back_every_cache_setting() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();

    assert_eq!(cache::find(&ctx).await.expect("find before"), None);
    let ensured = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    let found = cache::find(&ctx).await.expect("find").expect("found");

    assert_eq!(found, ensured);
    assert_eq!(found.node_type, spec.node_type);
    assert_eq!(found.node_count, spec.node_count);
    assert_eq!(found.multi_az, spec.multi_az);
    assert_eq!(found.snapshot_retention_days, spec.snapshot_retention_days);
    assert!(found.auth_secret_arn.is_some());
    assert_eq!(
        found.tags,
        BTreeMap::from([("team".to_string(), "platform".to_string())])
    );
}

#[tokio::test]
async fn cache_drift_made_outside_terraform_is_seen_and_repaired() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();
    let before = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    let ec = aws.elasticache();
    ec.modify_replication_group()
        .replication_group_id(cache_id())
        .cache_node_type("cache.t4g.small")
        .multi_az_enabled(false)
        .automatic_failover_enabled(false)
        .snapshot_retention_limit(0)
        .apply_immediately(true)
        .send()
        .await
        .expect("out-of-band modify");
    ec.remove_tags_from_resource()
        .resource_name(&before.arn)
        .tag_keys("team")
        .send()
        .await
        .expect("remove a tag");

    let drifted = cache::find(&ctx).await.expect("find").expect("found");
    assert_eq!(drifted.node_type, "cache.t4g.small");
    assert!(!drifted.multi_az && !drifted.automatic_failover);
    assert_eq!(drifted.snapshot_retention_days, 0);
    assert!(drifted.tags.is_empty());

    let repaired = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("repair");
    assert_eq!(repaired, before);
    let group = replication_group(&aws, &cache_id()).await;
    assert_eq!(group.cache_node_type(), Some("cache.r6g.large"));
    assert_eq!(
        group.multi_az(),
        Some(&aws_sdk_elasticache::types::MultiAzStatus::Enabled)
    );
    assert_eq!(group.snapshot_retention_limit(), Some(7));
    assert_owned(&elasticache_tags(&aws, &before.arn).await, "cache");
}

#[tokio::test]
async fn a_cache_secret_scheduled_for_deletion_is_restored_and_reused() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();
    cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    let token = secret_value(&aws, &secret_name()).await;

    aws.secretsmanager()
        .delete_secret()
        .secret_id(secret_name())
        .recovery_window_in_days(7)
        .send()
        .await
        .expect("schedule deletion");
    assert_eq!(
        cache::find(&ctx)
            .await
            .expect("find")
            .expect("found")
            .auth_secret_arn,
        None,
        "a secret pending deletion is not the auth secret any more"
    );

    let state = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure restores");
    assert!(state.auth_secret_arn.is_some());
    let secret = aws
        .secretsmanager()
        .describe_secret()
        .secret_id(secret_name())
        .send()
        .await
        .expect("secret");
    assert!(secret.deleted_date().is_none(), "restored");
    assert_eq!(secret_value(&aws, &secret_name()).await, token);
}

#[tokio::test]
async fn a_lost_cache_secret_is_recreated_with_a_new_token() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();
    let before = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    let old_token = secret_value(&aws, &secret_name()).await;

    aws.secretsmanager()
        .delete_secret()
        .secret_id(secret_name())
        .force_delete_without_recovery(true)
        .send()
        .await
        .expect("force delete");

    // The group's token is rotated to the new secret's (ROTATE keeps the
    // lost one valid too; moto accepts the call but does not model tokens).
    let after = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    assert!(after.auth_secret_arn.is_some());
    let new_token = secret_value(&aws, &secret_name()).await;
    assert_ne!(new_token, old_token);
    assert_eq!(new_token.len(), 64);
    assert_eq!(after.replication_group_id, before.replication_group_id);
}

#[tokio::test]
async fn a_cache_still_being_created_by_a_killed_apply_is_waited_for_and_adopted() {
    let moto = Moto::start();
    let proxy = lifecycle::Proxy::start(&moto.moto_endpoint, 3).await;
    let ctx = ctx_at(&proxy.endpoint).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();

    // The killed apply had stored the token and asked for the group, which
    // AWS is still creating.
    let sm = ctx.aws.secretsmanager();
    let token = sm
        .get_random_password()
        .password_length(64)
        .exclude_punctuation(true)
        .send()
        .await
        .expect("token")
        .random_password
        .expect("password");
    sm.create_secret()
        .name(secret_name())
        .kms_key_id(&keys.platform_key_arn)
        .secret_string(&token)
        .send()
        .await
        .expect("secret");
    let ec = ctx.aws.elasticache();
    ec.create_cache_subnet_group()
        .cache_subnet_group_name(cache_id())
        .cache_subnet_group_description("left over")
        .set_subnet_ids(Some(network.private_subnet_ids.clone()))
        .send()
        .await
        .expect("subnet group");
    ec.create_replication_group()
        .replication_group_id(cache_id())
        .replication_group_description("left over")
        .engine("redis")
        .engine_version("7.1")
        .cache_node_type("cache.r6g.large")
        .num_node_groups(1)
        .replicas_per_node_group(2)
        .automatic_failover_enabled(true)
        .multi_az_enabled(true)
        .at_rest_encryption_enabled(true)
        .kms_key_id(&keys.platform_key_arn)
        .transit_encryption_enabled(true)
        .auth_token(&token)
        .snapshot_retention_limit(7)
        .cache_subnet_group_name(cache_id())
        .security_group_ids(&network.cache_security_group_id)
        .send()
        .await
        .expect("group");

    let state = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure adopts");

    assert_eq!(
        proxy.creating_reads_left(&cache_id()),
        Some(0),
        "waited through creating"
    );
    let calls = proxy.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| *c == "CreateReplicationGroup")
            .count(),
        1,
        "no second group: {calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c == "ModifyReplicationGroup"),
        "nothing to repair, no token rotation: {calls:?}"
    );
    assert_eq!(
        secret_value(&aws, &secret_name()).await,
        token,
        "token kept"
    );
    assert_eq!(state.node_count, 3);
    assert_eq!(state.tags.get("team").map(String::as_str), Some("platform"));
    assert_owned(&elasticache_tags(&aws, &state.arn).await, "cache");
}

#[tokio::test]
async fn moto_gap_changing_the_cache_node_count_needs_replica_count_apis_moto_lacks() {
    let moto = Moto::start();
    let ctx = moto.ctx(ENV).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let mut spec = cache_spec();
    cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");

    // moto 5.2.5 answers IncreaseReplicaCount with a 500: the error names
    // the action so the user knows what failed.
    spec.node_count = 4;
    let err = cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect_err("moto does not implement IncreaseReplicaCount");
    let text = err.to_string();
    assert!(text.contains("add replicas to replication group"), "{text}");
    assert_eq!(
        replication_group(&aws, &cache_id())
            .await
            .member_clusters()
            .len(),
        3
    );
}

#[tokio::test]
async fn cache_delete_waits_for_the_group_then_removes_everything() {
    let moto = Moto::start();
    let proxy = lifecycle::Proxy::start(&moto.moto_endpoint, 2).await;
    let ctx = ctx_at(&proxy.endpoint).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    let spec = cache_spec();
    cache::ensure(&ctx, &spec, &network, &keys)
        .await
        .expect("ensure");
    assert_eq!(
        proxy.creating_reads_left(&cache_id()),
        Some(0),
        "waited through creating"
    );

    let warnings = cache::delete(&ctx).await.expect("delete");

    // The group was polled through "deleting" until gone, and only then
    // was the subnet group deleted.
    let calls = proxy.calls();
    let deleted = calls
        .iter()
        .position(|c| c == "DeleteReplicationGroup")
        .expect("group deleted");
    let subnet_deleted = calls
        .iter()
        .position(|c| c == "DeleteCacheSubnetGroup")
        .expect("subnet group deleted");
    assert!(subnet_deleted > deleted, "{calls:?}");
    let polls = calls[deleted..subnet_deleted]
        .iter()
        .filter(|c| *c == "DescribeReplicationGroups")
        .count();
    assert!(polls >= 3, "{calls:?}");
    assert!(
        !calls.iter().any(|c| c == "CreateSnapshot"),
        "no final snapshot"
    );

    // The secret waits out its recovery window.
    let secret = aws
        .secretsmanager()
        .describe_secret()
        .secret_id(secret_name())
        .send()
        .await
        .expect("secret still known");
    assert!(secret.deleted_date().is_some(), "scheduled for deletion");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&secret_name()) && w.contains("7 days")),
        "{warnings:?}"
    );

    assert_eq!(cache::find(&ctx).await.expect("find"), None);
    let again = cache::delete(&ctx).await.expect("second delete");
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test]
async fn moto_gap_a_deleted_cache_group_stays_deleting_so_delete_times_out() {
    let moto = Moto::start();
    // moto itself, without the proxy that finishes the deletion.
    let mut ctx = ctx_at(&moto.moto_endpoint).await;
    let aws = moto.aws().await;
    let (network, keys) = network_and_keys(&aws).await;
    cache::ensure(&ctx, &cache_spec(), &network, &keys)
        .await
        .expect("ensure");

    ctx.deadline = Instant::now() + Duration::from_secs(2);
    let err = cache::delete(&ctx)
        .await
        .expect_err("moto never finishes deleting a replication group");
    assert!(matches!(err, ComponentError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("to be deleted"), "{err}");

    // Everything that does not depend on the group being gone was done.
    assert_eq!(
        replication_group(&aws, &cache_id()).await.status(),
        Some("deleting")
    );
    let secret = aws
        .secretsmanager()
        .describe_secret()
        .secret_id(secret_name())
        .send()
        .await
        .expect("secret");
    assert!(secret.deleted_date().is_some());
    assert_eq!(cache::find(&ctx).await.expect("find"), None);
}

/// Plays the parts of the AWS lifecycle moto 5.2.5 leaves out, between the
/// provider and moto:
///
/// - a DB instance or replication group just created reads as "creating"
///   for the first `creating_reads` describes of it;
/// - a replication group moto marked "deleting" disappears
///   (ReplicationGroupNotFoundFault) after two more describes;
/// - DeleteCacheSubnetGroup (which moto does not implement) succeeds once
///   no group is still being deleted (else CacheSubnetGroupInUse), after
///   which the subnet group reads as not found.
///
/// One request per connection; everything else is forwarded untouched.
mod lifecycle {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    #[derive(Default)]
    struct State {
        creating: BTreeMap<String, u32>,
        deleting: BTreeMap<String, u32>,
        deleted_subnet_groups: BTreeSet<String>,
        calls: Vec<String>,
    }

    pub struct Proxy {
        pub endpoint: String,
        state: Arc<Mutex<State>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Proxy {
        pub async fn start(upstream: &str, creating_reads: u32) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
            let port = listener.local_addr().expect("proxy address").port();
            let upstream = upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            let state = Arc::new(Mutex::new(State::default()));
            let shared = state.clone();
            let task = tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let upstream = upstream.clone();
                    let state = shared.clone();
                    tokio::spawn(async move {
                        let _ = handle(client, &upstream, &state, creating_reads).await;
                    });
                }
            });
            Proxy {
                endpoint: format!("http://127.0.0.1:{port}"),
                state,
                task,
            }
        }

        /// The AWS actions seen, in order.
        pub fn calls(&self) -> Vec<String> {
            self.state
                .lock()
                .map(|s| s.calls.clone())
                .unwrap_or_default()
        }

        /// How many more "creating" answers `id` gets; None if never created.
        pub fn creating_reads_left(&self, id: &str) -> Option<u32> {
            self.state
                .lock()
                .ok()
                .and_then(|s| s.creating.get(id).copied())
        }
    }

    /// Reads one HTTP/1.1 message: head and Content-Length body, or (for
    /// responses, with `to_eof`) everything until the peer closes.
    async fn read_message(stream: &mut TcpStream, to_eof: bool) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        loop {
            if !to_eof {
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        return Ok(buf);
                    }
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(buf);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn split(message: &[u8]) -> (String, Vec<u8>) {
        match find(message, b"\r\n\r\n") {
            Some(end) => (
                String::from_utf8_lossy(&message[..end]).to_string(),
                message[end + 4..].to_vec(),
            ),
            None => (String::from_utf8_lossy(message).to_string(), Vec::new()),
        }
    }

    fn form(body: &[u8]) -> BTreeMap<String, String> {
        String::from_utf8_lossy(body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (decode(k), decode(v)))
            .collect()
    }

    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 3;
                }
                b'+' => {
                    out.push(b' ');
                    i += 1;
                }
                b => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).to_string()
    }

    fn response(status: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn elasticache_error(status: &str, code: &str, message: &str) -> Vec<u8> {
        response(
            status,
            &format!(
                "<ErrorResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\"><Error><Type>Sender</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
            ),
        )
    }

    /// Sends the request to moto (asking it to close the connection after
    /// answering) and returns its response with the body rewritten by
    /// `rewrite`.
    async fn forward(
        request: &[u8],
        upstream: &str,
        rewrite: impl FnOnce(String) -> String,
    ) -> std::io::Result<Vec<u8>> {
        let (head, body) = split(request);
        let head: Vec<&str> = head
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        let mut upstream_request = head.join("\r\n").into_bytes();
        upstream_request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        upstream_request.extend_from_slice(&body);
        let mut moto = TcpStream::connect(upstream).await?;
        moto.write_all(&upstream_request).await?;
        let answer = read_message(&mut moto, true).await?;
        let (head, body) = split(&answer);
        let body = rewrite(String::from_utf8_lossy(&body).to_string());
        let status = head
            .lines()
            .next()
            .unwrap_or("HTTP/1.1 500 Proxy")
            .to_string();
        let mut lines: Vec<String> = vec![status];
        for line in head.split("\r\n").skip(1) {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-length:")
                || lower.starts_with("connection:")
                || lower.starts_with("transfer-encoding:")
            {
                continue;
            }
            lines.push(line.to_string());
        }
        lines.push(format!("Content-Length: {}", body.len()));
        lines.push("Connection: close".to_string());
        let mut out = lines.join("\r\n").into_bytes();
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body.as_bytes());
        Ok(out)
    }

    async fn handle(
        mut client: TcpStream,
        upstream: &str,
        state: &Mutex<State>,
        creating_reads: u32,
    ) -> std::io::Result<()> {
        let request = read_message(&mut client, false).await?;
        if request.is_empty() {
            return Ok(());
        }
        let (head, body) = split(&request);
        let params = form(&body);
        // Query-protocol services name the action in the form; JSON ones
        // (Secrets Manager) in X-Amz-Target.
        let target = head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-amz-target")
                .then(|| value.trim().rsplit('.').next().unwrap_or("").to_string())
        });
        let action = params.get("Action").cloned().or(target).unwrap_or_default();
        let param = |name: &str| params.get(name).cloned().unwrap_or_default();
        if let Ok(mut s) = state.lock() {
            if !action.is_empty() {
                s.calls.push(action.clone());
            }
        }

        let answer = match action.as_str() {
            "CreateDBInstance" | "CreateDBInstanceReadReplica" => {
                mark_creating(state, &param("DBInstanceIdentifier"), creating_reads);
                forward(&request, upstream, |b| b).await?
            }
            "CreateReplicationGroup" => {
                mark_creating(state, &param("ReplicationGroupId"), creating_reads);
                forward(&request, upstream, |b| b).await?
            }
            "DescribeDBInstances" => {
                let id = param("DBInstanceIdentifier");
                if take_creating(state, &id) {
                    forward(&request, upstream, |b| {
                        b.replace(
                            "<DBInstanceStatus>available</DBInstanceStatus>",
                            "<DBInstanceStatus>creating</DBInstanceStatus>",
                        )
                    })
                    .await?
                } else {
                    forward(&request, upstream, |b| b).await?
                }
            }
            "DeleteReplicationGroup" => {
                if let Ok(mut s) = state.lock() {
                    s.deleting.insert(param("ReplicationGroupId"), 2);
                }
                forward(&request, upstream, |b| b).await?
            }
            "DescribeReplicationGroups" => {
                let id = param("ReplicationGroupId");
                let deleting = state.lock().ok().and_then(|mut s| {
                    s.deleting.get_mut(&id).map(|left| {
                        let gone = *left == 0;
                        *left = left.saturating_sub(1);
                        gone
                    })
                });
                match deleting {
                    Some(true) => elasticache_error(
                        "404 Not Found",
                        "ReplicationGroupNotFoundFault",
                        &format!("Replication group {id} not found."),
                    ),
                    Some(false) => forward(&request, upstream, |b| b).await?,
                    None if take_creating(state, &id) => {
                        forward(&request, upstream, |b| {
                            b.replace("<Status>available</Status>", "<Status>creating</Status>")
                        })
                        .await?
                    }
                    None => forward(&request, upstream, |b| b).await?,
                }
            }
            "DeleteCacheSubnetGroup" => {
                let name = param("CacheSubnetGroupName");
                let (in_use, gone) = state
                    .lock()
                    .map(|s| {
                        (
                            s.deleting.values().any(|left| *left > 0),
                            s.deleted_subnet_groups.contains(&name),
                        )
                    })
                    .unwrap_or((false, false));
                if gone {
                    elasticache_error(
                        "404 Not Found",
                        "CacheSubnetGroupNotFoundFault",
                        &format!("CacheSubnetGroup {name} not found."),
                    )
                } else if in_use {
                    elasticache_error(
                        "400 Bad Request",
                        "CacheSubnetGroupInUse",
                        &format!(
                            "Cache subnet group {name} is currently in use by a replication group."
                        ),
                    )
                } else {
                    if let Ok(mut s) = state.lock() {
                        s.deleted_subnet_groups.insert(name);
                    }
                    response(
                        "200 OK",
                        "<DeleteCacheSubnetGroupResponse xmlns=\"http://elasticache.amazonaws.com/doc/2015-02-02/\">\
                         <ResponseMetadata><RequestId>proxy</RequestId></ResponseMetadata></DeleteCacheSubnetGroupResponse>",
                    )
                }
            }
            "DescribeCacheSubnetGroups"
                if state
                    .lock()
                    .map(|s| {
                        s.deleted_subnet_groups
                            .contains(&param("CacheSubnetGroupName"))
                    })
                    .unwrap_or(false) =>
            {
                elasticache_error(
                    "404 Not Found",
                    "CacheSubnetGroupNotFoundFault",
                    &format!(
                        "CacheSubnetGroup {} not found.",
                        param("CacheSubnetGroupName")
                    ),
                )
            }
            _ => forward(&request, upstream, |b| b).await?,
        };
        client.write_all(&answer).await?;
        client.shutdown().await
    }

    fn mark_creating(state: &Mutex<State>, id: &str, reads: u32) {
        if let Ok(mut s) = state.lock() {
            s.creating.insert(id.to_string(), reads);
        }
    }

    /// True (and one fewer left) while `id` should still read "creating".
    fn take_creating(state: &Mutex<State>, id: &str) -> bool {
        state
            .lock()
            .ok()
            .and_then(|mut s| {
                s.creating.get_mut(id).map(|left| {
                    let creating = *left > 0;
                    *left = left.saturating_sub(1);
                    creating
                })
            })
            .unwrap_or(false)
    }
}
