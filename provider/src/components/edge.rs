//! edge: WAFv2 web ACLs (AWS managed rule groups and a rate rule), Shield protection, optional CloudFront distribution.
//!
//! - The web ACL `idis-<env>` is REGIONAL: it is for the load balancers in
//!   front of the platform. They are made by the AWS Load Balancer
//!   Controller from the cluster's ingresses, not by this provider, so the
//!   environment hands out the ingress annotations that attach the ACL
//!   (`ingress_annotations`) and reads back what WAF lists as attached
//!   (`web_acl_associations`).
//! - CloudFront can only use a CLOUDFRONT-scope web ACL, which lives in
//!   us-east-1 ("AWS WAF web ACL scope", WAF Developer Guide). With a
//!   distribution and `waf`, the provider makes `idis-<env>-cdn` there with
//!   the same rules and sets it as the distribution's `WebACLId`.
//! - The CloudFront distribution is found by its comment `idis-<env>` and
//!   confirmed by the ownership tags; its origin is reached over HTTPS only.
//! - The Shield Advanced protection `idis-<env>` covers the distribution.
//!   Without one the provider protects nothing itself: the load balancer
//!   serves users, and the ingress annotation asks its controller to
//!   protect it. The NAT gateways' addresses carry only egress and are never
//!   protected. Shield Advanced needs an active subscription on the account
//!   (checked at plan); this provider never subscribes (a one-year
//!   commitment) on its own.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_cloudfront::types::{
    Aliases, AllowedMethods, CacheBehavior, CacheBehaviors, CachedMethods, CustomOriginConfig,
    DefaultCacheBehavior, DistributionConfig, DistributionConfigWithTags, LoggingConfig, Method,
    MinimumProtocolVersion, Origin, OriginProtocolPolicy, OriginSslProtocols, Origins,
    S3OriginConfig, SslProtocol, SslSupportMethod, Tags, ViewerCertificate, ViewerProtocolPolicy,
};
use aws_sdk_wafv2::types::{
    AllowAction, BlockAction, DefaultAction, ManagedRuleGroupStatement, NoneAction, OverrideAction,
    RateBasedStatement, RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement,
    VisibilityConfig, WebAcl,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::operation::BuildError;
use serde::{Deserialize, Serialize};

use super::cdn_assets;
use super::describe::{
    Check, Component, Default, Guard, Output, Problem, Reading, Setting, Verdicts, When,
};
use super::{
    aws_error, is_not_found, partition, user_visible_tags, ComponentError, Ctx, TAG_ENVIRONMENT,
};
use crate::protocol::cty::{Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

pub const COMPONENT: &str = "edge";

/// The managed CachingOptimized cache policy of CloudFront.
pub const CACHING_OPTIMIZED_POLICY_ID: &str = "658327ea-f89d-4fab-a63d-7e88639e58f6";

/// AWS managed rule groups in the web ACL, in priority order.
pub const MANAGED_RULE_GROUPS: &[&str] = &[
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
];

/// Name of the rate-based rule.
pub const RATE_RULE: &str = "rate-limit";

const ORIGIN_ID: &str = "idis-origin";
/// The assets bucket's origin (with `cdn`).
const ASSETS_ID: &str = "idis-assets";
/// The path pattern of the API behind the CDN.
pub const API_PATH: &str = "/api/*";
/// CloudFront managed policies ("Use managed cache policies", "Use
/// managed origin request policies", "Use managed response headers
/// policies", CloudFront Developer Guide).
pub const CACHING_DISABLED_POLICY_ID: &str = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
pub const ALL_VIEWER_EXCEPT_HOST_HEADER_POLICY_ID: &str = "b689b0a8-53d0-40ab-baf2-68738e2966ac";
pub const SECURITY_HEADERS_POLICY_ID: &str = "67f7725c-6f97-4210-82d7-5512b31e9d03";

/// What exists in AWS for this component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeState {
    pub web_acl_arn: Option<String>,
    pub web_acl_id: Option<String>,
    pub rate_limit: Option<i64>,
    pub shield_protection_id: Option<String>,
    pub cdn_distribution_id: Option<String>,
    pub cdn_domain_name: Option<String>,
    /// Names of the web ACL's rules, in priority order (a missing managed
    /// rule group shows here).
    #[serde(default)]
    pub web_acl_rules: Vec<String>,
    /// The web ACL's user-visible tags (no ownership or aws:* tags).
    #[serde(default)]
    pub web_acl_tags: BTreeMap<String, String>,
    /// What the Shield protection covers: the distribution or an EIP allocation.
    #[serde(default)]
    pub shield_resource_arn: Option<String>,
    #[serde(default)]
    pub cdn_arn: Option<String>,
    /// The distribution's origin domain, as CloudFront reports it.
    #[serde(default)]
    pub cdn_origin_domain: Option<String>,
    #[serde(default)]
    pub cdn_enabled: bool,
    /// The CLOUDFRONT-scope web ACL `idis-<env>-cdn` (us-east-1).
    #[serde(default)]
    pub cdn_web_acl_arn: Option<String>,
    /// The web ACL the distribution uses (its `WebACLId`; empty for none).
    #[serde(default)]
    pub cdn_uses_web_acl: Option<String>,
    /// The load balancers the regional web ACL is attached to, as WAF
    /// lists them (`ListResourcesForWebACL`).
    #[serde(default)]
    pub web_acl_associations: Vec<String>,
    /// The distribution's default origin is the assets bucket.
    #[serde(default)]
    pub cdn_serves_assets: bool,
    #[serde(default)]
    pub cdn_aliases: Vec<String>,
    #[serde(default)]
    pub cdn_certificate_arn: Option<String>,
    /// What the distribution is made of, as lines (see `shape`).
    #[serde(default)]
    pub cdn_shape: Vec<String>,
    /// The assets bucket's name, while it exists.
    #[serde(default)]
    pub assets_bucket: Option<String>,
    /// What is wrong with the assets and log buckets and the OAC (judged
    /// against the distribution read); None when none of them exists.
    #[serde(default)]
    pub assets_problems: Option<Vec<String>>,
    /// The Origin Access Control's id, the buckets' domains: what the
    /// wanted shape of the distribution names.
    #[serde(default)]
    pub oac_id: Option<String>,
    #[serde(default)]
    pub assets_domain: String,
    #[serde(default)]
    pub logs_domain: String,
    /// The guards of the edge, as read.
    #[serde(skip)]
    pub verdicts: Verdicts,
}

// ---------------------------------------------------------------- description

/// The `edge` block once planned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EdgeSpec {
    pub waf: bool,
    pub ddos_protection: bool,
    /// Requests per 5 minutes per IP before the rate rule blocks.
    pub rate_limit: i64,
    /// Origin of a CloudFront distribution; none when null.
    pub origin_domain: Option<String>,
    /// Static assets behind the distribution.
    #[serde(default)]
    pub cdn: bool,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub certificate_arn: Option<String>,
}

impl EdgeSpec {
    /// Whether the environment has a CloudFront distribution.
    pub fn distribution(&self) -> bool {
        self.cdn || self.origin_domain.is_some()
    }
}

/// The computed attributes of the edge.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EdgeOutputs {
    pub web_acl_arn: Option<String>,
    pub shield_protection_id: Option<String>,
    pub cdn_domain_name: Option<String>,
    pub cdn_web_acl_arn: Option<String>,
    pub web_acl_associations: Option<Vec<String>>,
    pub ingress_annotations: BTreeMap<String, String>,
    pub cdn_assets_bucket_name: Option<String>,
}

/// The AWS Load Balancer Controller's ingress annotations ("Ingress
/// annotations", AWS Load Balancer Controller documentation): the regional
/// web ACL to attach and Shield Advanced protection of the load balancer.
pub const ANNOTATION_WAF: &str = "alb.ingress.kubernetes.io/wafv2-acl-arn";
pub const ANNOTATION_SHIELD: &str = "alb.ingress.kubernetes.io/shield-advanced-protection";

/// What the ingress of the platform carries for the edge.
pub fn annotations(web_acl_arn: Option<&str>, ddos_protection: bool) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    if let Some(arn) = web_acl_arn {
        a.insert(ANNOTATION_WAF.to_string(), arn.to_string());
    }
    if ddos_protection {
        a.insert(ANNOTATION_SHIELD.to_string(), "true".to_string());
    }
    a
}

pub const DEFAULT_RATE_LIMIT: i64 = 2000;

/// The edge of an environment: web ACL, Shield protection, CDN.
pub struct Edge;

/// An ACM certificate in us-east-1, the one region CloudFront takes
/// certificates from.
fn is_cloudfront_certificate(s: &str) -> bool {
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "acm"
        && parts[3] == "us-east-1"
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && parts[5]
            .strip_prefix("certificate/")
            .is_some_and(|id| !id.is_empty())
}

fn is_hostname(s: &str) -> bool {
    s.len() <= 253
        && s.contains('.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

impl Component for Edge {
    const NAME: &'static str = COMPONENT;
    /// The edge goes last: it protects what stands behind it.
    const AFTER: &'static [&'static str] = &[
        super::cluster::COMPONENT,
        super::database::COMPONENT,
        super::cache::COMPONENT,
        super::storage::COMPONENT,
    ];

    async fn find(ctx: &Ctx) -> Result<Option<EdgeState>, ComponentError> {
        find(ctx).await
    }

    /// The edge is read whatever exists of it: a web ACL deleted out of
    /// band reads as `waf = false`.
    fn absent() -> Option<EdgeState> {
        Some(EdgeState::default())
    }

    async fn ensure(
        ctx: &Ctx,
        spec: &EdgeSpec,
        _built: &super::Observed,
    ) -> Result<EdgeState, ComponentError> {
        Box::pin(ensure(ctx, spec)).await
    }

    async fn delete(ctx: &Ctx, _spec: &EdgeSpec) -> Result<Vec<String>, ComponentError> {
        Box::pin(delete(ctx)).await
    }
    const DOC: &'static str = "The edge: WAFv2 web ACL (AWS managed rule groups and a rate limit), Shield protection, optional CloudFront distribution.";
    /// Shield protections are global (named `idis-<name>`): the edge alone
    /// does not show that an environment exists in a region.
    const REGIONAL: bool = false;
    type Spec = EdgeSpec;
    type State = EdgeState;
    type Outputs = EdgeOutputs;

    fn settings() -> Vec<Setting> {
        vec![
            Setting::new(
                "waf",
                Type::Bool,
                Default::Bool(true),
                "Create the WAFv2 web ACL. Default `true`.".into(),
            ),
            Setting::new(
                "ddos_protection",
                Type::Bool,
                Default::Bool(true),
                "Shield Advanced protection: of the CloudFront distribution when there is one, and of the ingress load balancer through `ingress_annotations`. Needs an active Shield Advanced subscription (checked at plan). Default `true`.".into(),
            ),
            Setting::new(
                "rate_limit",
                Type::Number,
                Default::Int(DEFAULT_RATE_LIMIT),
                format!("Requests per 5 minutes from one IP before the rate rule blocks, 100 to 2000000000. Default `{DEFAULT_RATE_LIMIT}`."),
            )
            .check(Check::Range(100, 2_000_000_000)),
            Setting::new(
                "origin_domain",
                Type::String,
                Default::Null,
                "Origin domain of a CloudFront distribution (e.g. the ingress load balancer's name). No distribution when unset.".into(),
            )
            .check(Check::Text(
                is_hostname,
                "use a DNS name such as \"app.example.com\" (no scheme, no path)",
            )),
            Setting::new(
                "cdn",
                Type::Bool,
                Default::Bool(false),
                "Serve the UI's static build through the CloudFront distribution: a private S3 bucket `idis-<name>-assets-<account>-<region>` (public access blocked, SSE-S3, versioned; only this distribution may read it, through the Origin Access Control `idis-<name>-assets`) is its default origin, `origin_domain` (the API) a second one for `/api/*` (caching disabled, every viewer method). HTTPS only, the managed security headers policy, access logs to `idis-<name>-cdn-logs-<account>-<region>`, the CLOUDFRONT-scope web ACL with `waf`. Default `false`.".into(),
            ),
            Setting::new(
                "aliases",
                Type::list(Type::String),
                Default::Strings(&[]),
                "Other names of the distribution (`www.example.com`); they need `certificate_arn`. Default `[]`.".into(),
            )
            .check(Check::EachText(
                is_hostname,
                "use a DNS name such as \"www.example.com\" (no scheme, no path)",
            )),
            Setting::new(
                "certificate_arn",
                Type::String,
                Default::Null,
                "ACM certificate (in us-east-1, as CloudFront requires) for `aliases`, served with SNI and TLS 1.2 at least. The distribution's default `*.cloudfront.net` certificate when unset.".into(),
            )
            .check(Check::Text(
                is_cloudfront_certificate,
                "use an ACM certificate ARN in us-east-1 such as \"arn:aws:acm:us-east-1:123456789012:certificate/...\" (CloudFront takes certificates from us-east-1 only)",
            )),
        ]
    }

    fn check(config: &Value) -> Vec<Problem> {
        let block = config.get_attr(COMPONENT);
        let aliases = block.get_attr("aliases");
        let certificate = block.get_attr("certificate_arn");
        let mut problems = Vec::new();
        if matches!(aliases, Value::List(items) if !items.is_empty()) && certificate.is_null() {
            problems.push(Problem::at(
                "aliases",
                aliases,
                "aliases need certificate_arn: CloudFront serves another name only with a certificate for it (ACM, us-east-1)",
            ));
        }
        // Known to have no distribution: cdn off and no origin.
        let no_cdn = block.get_attr("cdn").as_bool() == Some(false)
            && block.get_attr("origin_domain").is_null();
        if no_cdn && matches!(aliases, Value::List(items) if !items.is_empty()) {
            problems.push(Problem::at(
                "aliases",
                aliases,
                "aliases name the CloudFront distribution: set cdn = true or origin_domain",
            ));
        }
        problems
    }

    fn outputs() -> Vec<Output> {
        vec![
            Output::new(
                "web_acl_arn",
                Type::String,
                "WAFv2 web ACL ARN (null when `edge.waf` is false).",
            ),
            Output::new(
                "shield_protection_id",
                Type::String,
                "Shield protection id of the CloudFront distribution (null when `edge.ddos_protection` is false or there is no distribution).",
            ),
            Output::new(
                "cdn_domain_name",
                Type::String,
                "CloudFront domain name (null without `edge.origin_domain`).",
            ),
            Output::new(
                "cdn_web_acl_arn",
                Type::String,
                "The CLOUDFRONT-scope web ACL (us-east-1) the distribution uses (null without `edge.waf` and `edge.origin_domain`).",
            ),
            Output::new(
                "web_acl_associations",
                Type::list(Type::String),
                "The load balancers the regional web ACL is attached to, as WAF lists them (null when `edge.waf` is false). Read, not made: the ingress controller attaches them; one detached shows in `terraform plan -refresh-only`.",
            )
            .made_by_others(),
            Output::new(
                "cdn_assets_bucket_name",
                Type::String,
                "The static-assets bucket behind the distribution, for the UI's deploy job (null without `edge.cdn`).",
            ),
            Output::new(
                "ingress_annotations",
                Type::map(Type::String),
                "Annotations for the platform's Kubernetes ingress: the AWS Load Balancer Controller attaches the regional web ACL and turns on Shield Advanced for the load balancer it makes. Once `dr.promote`, the DR region's web ACL (`dr_web_acl_arn`): WAF attaches a regional web ACL only to load balancers of its own region.",
            ),
        ]
    }

    fn guards() -> &'static [Guard] {
        GUARDS
    }

    /// Outputs follow the toggles: null when off, kept while on and made,
    /// unknown when apply makes them anew. What belongs to the distribution
    /// (its protection and its web ACL) is null without one and made anew
    /// when one appears.
    fn plan_outputs(prior: &Value, planned: &mut Value) {
        let edge = planned.get_attr(COMPONENT).clone();
        let before = prior.get_attr(COMPONENT);
        // A distribution: with cdn, or an origin domain. Null: none, Unknown:
        // not known yet.
        let has = |block: &Value| match (block.get_attr("cdn"), block.get_attr("origin_domain")) {
            (Value::Bool(true), _) => Value::Bool(true),
            (Value::Unknown, _) | (_, Value::Unknown) => Value::Unknown,
            (_, origin) => Value::Bool(!origin.is_null()),
        };
        let cdn_now = has(&edge);
        let cdn_stays = cdn_now == Value::Bool(true) && has(before) == Value::Bool(true);
        for (toggle, output, of_cdn) in [
            ("waf", "web_acl_arn", false),
            ("waf", "web_acl_associations", false),
            ("ddos_protection", "shield_protection_id", true),
            ("waf", "cdn_web_acl_arn", true),
        ] {
            let value = match edge.get_attr(toggle).as_bool() {
                Some(false) => Value::Null,
                _ if of_cdn && cdn_now == Value::Bool(false) => Value::Null,
                Some(true) if (!of_cdn || cdn_stays) && !prior.get_attr(output).is_null() => {
                    prior.get_attr(output).clone()
                }
                _ => Value::Unknown,
            };
            planned.set_attr(output, value);
        }
        let annotations = match (
            planned.get_attr("web_acl_arn"),
            edge.get_attr("ddos_protection").as_bool(),
        ) {
            (Value::Unknown, _) | (_, None) => Value::Unknown,
            (arn, Some(ddos)) => Value::string_map(annotations(arn.as_str(), ddos)),
        };
        planned.set_attr("ingress_annotations", annotations);
        let cdn = match &cdn_now {
            Value::Bool(false) => Value::Null,
            Value::Bool(true) if cdn_stays && !prior.get_attr("cdn_domain_name").is_null() => {
                prior.get_attr("cdn_domain_name").clone()
            }
            _ => Value::Unknown,
        };
        planned.set_attr("cdn_domain_name", cdn);
        let assets = match edge.get_attr("cdn") {
            Value::Bool(false) => Value::Null,
            Value::Bool(true) if !prior.get_attr("cdn_assets_bucket_name").is_null() => {
                prior.get_attr("cdn_assets_bucket_name").clone()
            }
            _ => Value::Unknown,
        };
        planned.set_attr("cdn_assets_bucket_name", assets);
    }

    fn judge(prior: &Value, planned: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        let was = |a: &str| prior.get_attr(COMPONENT).get_attr(a).as_bool();
        let now = |a: &str| planned.get_attr(COMPONENT).get_attr(a).as_bool();
        if was("waf") == Some(true) && now("waf") == Some(false) {
            d.push(Diagnostic::warning(
                "WAF will be removed",
                "edge: the web ACL is deleted; traffic is no longer filtered by the managed rules or rate-limited.",
            ));
        }
        if was("ddos_protection") == Some(true) && now("ddos_protection") == Some(false) {
            d.push(Diagnostic::warning(
                "Shield protection will be removed",
                "edge: the Shield protection is deleted; the environment falls back to Shield Standard.",
            ));
        }
        d
    }

    fn read(
        state: &EdgeState,
        stored: &EdgeSpec,
        _prior: &Value,
    ) -> Reading<EdgeSpec, EdgeOutputs> {
        // What Shield protects is the distribution; without one the
        // protection is the ingress controller's (by annotation), so the
        // setting stays as written.
        let ddos_protection = match state.cdn_distribution_id {
            Some(_) => state.shield_protection_id.is_some(),
            None => stored.ddos_protection,
        };
        Reading {
            settings: EdgeSpec {
                // Both web ACLs while there is a distribution, else the
                // regional one.
                waf: state.web_acl_arn.is_some()
                    && (state.cdn_distribution_id.is_none() || state.cdn_web_acl_arn.is_some()),
                ddos_protection,
                rate_limit: state.rate_limit.unwrap_or(stored.rate_limit),
                // The distribution's origin, while there is one.
                origin_domain: match (&state.cdn_distribution_id, &state.cdn_origin_domain) {
                    (Some(_), origin) => origin.clone(),
                    (None, _) => stored.origin_domain.clone(),
                },
                cdn: match &state.cdn_distribution_id {
                    Some(_) => state.cdn_serves_assets,
                    None => stored.cdn,
                },
                aliases: match &state.cdn_distribution_id {
                    Some(_) => state.cdn_aliases.clone(),
                    None => stored.aliases.clone(),
                },
                certificate_arn: match &state.cdn_distribution_id {
                    Some(_) => state.cdn_certificate_arn.clone(),
                    None => stored.certificate_arn.clone(),
                },
            },
            outputs: EdgeOutputs {
                web_acl_arn: state.web_acl_arn.clone(),
                shield_protection_id: state.shield_protection_id.clone(),
                cdn_domain_name: state.cdn_domain_name.clone(),
                cdn_web_acl_arn: state.cdn_web_acl_arn.clone(),
                web_acl_associations: state
                    .web_acl_arn
                    .as_ref()
                    .map(|_| state.web_acl_associations.clone()),
                ingress_annotations: annotations(state.web_acl_arn.as_deref(), ddos_protection),
                cdn_assets_bucket_name: state.assets_bucket.clone(),
            },
            verdicts: {
                // With nothing of the edge in AWS there is nothing to tag.
                let mut v = state.verdicts.clone();
                if v.problems(GUARDS[TAGS].key).is_none() {
                    v.judge(&GUARDS[TAGS], Vec::new());
                }
                // The distribution's make-up against what the stored
                // block asks for; the CDN's buckets while it serves assets.
                if state.cdn_distribution_id.is_some() {
                    let want = Want::of_state(state, stored);
                    let mut problems = shape_problems(&want.shape(), &state.cdn_shape);
                    if let Some(acl) = &state.cdn_web_acl_arn {
                        if state.cdn_uses_web_acl.as_deref() != Some(acl.as_str()) {
                            problems.push(format!(
                                "the distribution uses {}, not the web ACL {acl}",
                                match state.cdn_uses_web_acl.as_deref() {
                                    None | Some("") => "no web ACL".to_string(),
                                    Some(other) => format!("the web ACL {other}"),
                                }
                            ));
                        }
                    }
                    v.judge(&GUARDS[DISTRIBUTION], problems);
                }
                if stored.cdn {
                    v.judge(
                        &GUARDS[ASSETS],
                        state.assets_problems.clone().unwrap_or_else(|| {
                            vec!["the assets bucket, its log bucket and its origin access control are missing".to_string()]
                        }),
                    );
                }
                // Without a distribution no protection is what is made.
                if v.problems(GUARDS[SHIELD].key).is_none()
                    && state.cdn_distribution_id.is_none()
                    && stored.ddos_protection
                {
                    v.judge(&GUARDS[SHIELD], Vec::new());
                }
                v
            },
        }
    }
}

const WEB_ACL: usize = 0;
const DISTRIBUTION: usize = 1;
const SHIELD: usize = 2;
const TAGS: usize = 3;
const ASSETS: usize = 4;

/// What the provider makes of the edge without a knob.
const GUARDS: &[Guard] = &[
    Guard::new(
        "web_acl",
        "allows by default; managed rules and rate rule as made",
        "Each web ACL (the regional `idis-<name>`, and `idis-<name>-cdn` in us-east-1 for the distribution) allows by default and holds exactly the AWS managed rule groups AWSManagedRulesCommonRuleSet, AWSManagedRulesKnownBadInputsRuleSet and AWSManagedRulesAmazonIpReputationList (blocking, not overridden to count) and the rate rule (per IP, blocking), each with metrics and sampled requests.",
    )
    .when(When::On("waf")),
    Guard::new(
        "distribution",
        "enabled, HTTPS only, behind its web ACL",
        "The distribution is enabled, reaches `origin_domain` over HTTPS only, redirects viewers to HTTPS, caches with CachingOptimized and, with `waf`, uses the CLOUDFRONT-scope web ACL `idis-<name>-cdn`. With `cdn`: its default origin is the assets bucket through the Origin Access Control `idis-<name>-assets`, with the default root object `index.html` and the managed SecurityHeadersPolicy; `/api/*` goes to `origin_domain` (when set) with CachingDisabled, AllViewerExceptHostHeader and every viewer method; no other behaviour; standard access logs go to the log bucket under `cloudfront/`; with `certificate_arn`, SNI and TLSv1.2_2021 at least.",
    )
    .when(When::OnOrSet("cdn", "origin_domain")),
    Guard::new(
        "shield",
        "protects the distribution only",
        "The Shield protection `idis-<name>` covers the CloudFront distribution. Without a distribution there is none (the ingress annotation asks the load balancer controller to protect the load balancer); the NAT gateways' Elastic IPs, which carry only egress, are never protected.",
    )
    .when(When::On("ddos_protection")),
    Guard::new(
        "tags",
        "ownership and user tags present",
        "The web ACL and the distribution carry `tags`, the provider's `default_tags` and the ownership tags. Tags others add are left alone.",
    ),
    Guard::new(
        "assets_bucket",
        "private, encrypted, versioned, read by the distribution only",
        "With `cdn`: the assets bucket blocks all public access, is encrypted (SSE-S3) and versioned, and its policy allows nothing but `s3:GetObject` to `cloudfront.amazonaws.com` with `AWS:SourceArn` this distribution, and denies requests without TLS; the log bucket blocks public access, is encrypted with SSE-S3 and has ACLs enabled (`BucketOwnerPreferred`: CloudFront standard logs are delivered through an ACL grant and cannot use SSE-KMS); the Origin Access Control exists; all carry the ownership tags.",
    )
    .when(When::On("cdn")),
];

fn conflict(message: impl Into<String>) -> ComponentError {
    ComponentError::Conflict {
        component: COMPONENT,
        message: message.into(),
    }
}

fn invalid(what: &str, e: BuildError) -> ComponentError {
    conflict(format!("could not build the request for {what}: {e}"))
}

/// Shield's API lives in us-east-1 for the whole `aws` partition.
fn shield(ctx: &Ctx) -> aws_sdk_shield::Client {
    let client = ctx.aws.shield();
    if partition(&ctx.region) != "aws" || ctx.region == "us-east-1" {
        return client;
    }
    let conf = client
        .config()
        .to_builder()
        .region(aws_sdk_shield::config::Region::new("us-east-1"))
        .build();
    aws_sdk_shield::Client::from_conf(conf)
}

// ---------------------------------------------------------------- web ACL

/// Which of the two web ACLs: the REGIONAL one for the load balancers, or
/// the CLOUDFRONT-scope one for the distribution, which WAF keeps in
/// us-east-1 ("Working with web ACLs", AWS WAF Developer Guide: "For
/// Amazon CloudFront, you must also specify the Region US East (N.
/// Virginia)").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum At {
    Regional,
    Cdn,
}

impl At {
    fn scope(self) -> Scope {
        match self {
            At::Regional => Scope::Regional,
            At::Cdn => Scope::Cloudfront,
        }
    }

    fn name(self, ctx: &Ctx) -> String {
        match self {
            At::Regional => ctx.prefix(),
            At::Cdn => format!("{}-cdn", ctx.prefix()),
        }
    }

    /// What an ARN of this scope holds (`…:regional/webacl/…`, `…:global/webacl/…`).
    fn arn_part(self) -> &'static str {
        match self {
            At::Regional => ":regional/webacl/",
            At::Cdn => ":global/webacl/",
        }
    }

    fn what(self) -> &'static str {
        match self {
            At::Regional => "regional WAF web ACL",
            At::Cdn => "CloudFront WAF web ACL",
        }
    }

    fn description(self, ctx: &Ctx) -> String {
        match self {
            At::Regional => format!("IDIS environment {}: load balancers", ctx.env),
            At::Cdn => format!("IDIS environment {}: CloudFront distribution", ctx.env),
        }
    }
}

/// The WAF client for a scope: CLOUDFRONT-scope calls go to us-east-1.
fn waf(ctx: &Ctx, at: At) -> aws_sdk_wafv2::Client {
    let client = ctx.aws.wafv2();
    if at == At::Regional || partition(&ctx.region) != "aws" || ctx.region == "us-east-1" {
        return client;
    }
    let conf = client
        .config()
        .to_builder()
        .region(aws_sdk_wafv2::config::Region::new("us-east-1"))
        .build();
    aws_sdk_wafv2::Client::from_conf(conf)
}

/// The web ACL as read from WAF.
struct Acl {
    acl: WebAcl,
    lock_token: String,
    tags: BTreeMap<String, String>,
    /// The load balancers it is attached to (regional ACLs only).
    resources: Vec<String>,
}

impl Acl {
    fn rate_limit(&self) -> Option<i64> {
        self.acl
            .rules()
            .iter()
            .find(|r| r.name() == RATE_RULE)
            .and_then(|r| r.statement())
            .and_then(|s| s.rate_based_statement())
            .map(|s| s.limit())
    }
}

async fn find_acl_summary(
    ctx: &Ctx,
    at: At,
) -> Result<Option<aws_sdk_wafv2::types::WebAclSummary>, ComponentError> {
    let name = at.name(ctx);
    let mut marker: Option<String> = None;
    loop {
        let page = waf(ctx, at)
            .list_web_acls()
            .scope(at.scope())
            .limit(100)
            .set_next_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("list the {}s", at.what()), e))?;
        let found = page.web_acls().iter().find(|a| {
            a.name() == Some(name.as_str())
                && a.arn().is_some_and(|arn| arn.contains(at.arn_part()))
        });
        if let Some(found) = found {
            return Ok(Some(found.clone()));
        }
        match page.next_marker() {
            Some(next) if !page.web_acls().is_empty() => marker = Some(next.to_string()),
            _ => return Ok(None),
        }
    }
}

async fn read_acl(ctx: &Ctx, at: At) -> Result<Option<Acl>, ComponentError> {
    let Some(summary) = find_acl_summary(ctx, at).await? else {
        return Ok(None);
    };
    let (Some(id), Some(arn)) = (summary.id(), summary.arn()) else {
        return Ok(None);
    };
    let name = at.name(ctx);
    let waf = waf(ctx, at);
    let (got, tags, resources) = tokio::join!(
        waf.get_web_acl()
            .name(&name)
            .scope(at.scope())
            .id(id)
            .send(),
        waf.list_tags_for_resource().resource_arn(arn).send(),
        attached(ctx, at, arn),
    );
    let got = match got {
        Ok(g) => g,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the WAF web ACL {name}"),
                e,
            ))
        }
    };
    let tags = match tags {
        Ok(t) => t
            .tag_info_for_resource()
            .map(|i| {
                i.tag_list()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the tags of the WAF web ACL {name}"),
                e,
            ))
        }
    };
    let lock_token = got.lock_token().unwrap_or_default().to_string();
    let resources = resources?;
    Ok(got.web_acl.map(|acl| Acl {
        acl,
        lock_token,
        tags,
        resources,
    }))
}

/// The load balancers a regional web ACL is attached to. (CloudFront
/// distributions are not listed by WAF: a distribution names its ACL.)
async fn attached(ctx: &Ctx, at: At, arn: &str) -> Result<Vec<String>, ComponentError> {
    if at == At::Cdn {
        return Ok(Vec::new());
    }
    match waf(ctx, at)
        .list_resources_for_web_acl()
        .web_acl_arn(arn)
        .resource_type(aws_sdk_wafv2::types::ResourceType::ApplicationLoadBalancer)
        .send()
        .await
    {
        Ok(out) => {
            let mut arns = out.resource_arns().to_vec();
            arns.sort();
            Ok(arns)
        }
        Err(e) if is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!(
                "list the load balancers that use the web ACL {}",
                at.name(ctx)
            ),
            e,
        )),
    }
}

/// Metrics named `<acl name>-<metric>`.
fn visibility(acl: &str, metric: &str) -> Result<VisibilityConfig, ComponentError> {
    VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name(format!("{acl}-{metric}"))
        .build()
        .map_err(|e| invalid("the WAF visibility config", e))
}

/// The rules the web ACL must have, in priority order.
fn desired_rules(acl: &str, rate_limit: i64) -> Result<Vec<Rule>, ComponentError> {
    let mut rules = Vec::new();
    for (priority, group) in (0..).zip(MANAGED_RULE_GROUPS) {
        let statement = Statement::builder()
            .managed_rule_group_statement(
                ManagedRuleGroupStatement::builder()
                    .vendor_name("AWS")
                    .name(*group)
                    .build()
                    .map_err(|e| invalid("a managed rule group", e))?,
            )
            .build();
        rules.push(
            Rule::builder()
                .name(*group)
                .priority(priority)
                .statement(statement)
                .override_action(
                    OverrideAction::builder()
                        .none(NoneAction::builder().build())
                        .build(),
                )
                .visibility_config(visibility(acl, group)?)
                .build()
                .map_err(|e| invalid("a managed rule", e))?,
        );
    }
    let rate = Statement::builder()
        .rate_based_statement(
            RateBasedStatement::builder()
                .limit(rate_limit)
                .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
                .build()
                .map_err(|e| invalid("the rate-based statement", e))?,
        )
        .build();
    rules.push(
        Rule::builder()
            .name(RATE_RULE)
            .priority(MANAGED_RULE_GROUPS.len() as i32)
            .statement(rate)
            .action(
                RuleAction::builder()
                    .block(BlockAction::builder().build())
                    .build(),
            )
            .visibility_config(visibility(acl, RATE_RULE)?)
            .build()
            .map_err(|e| invalid("the rate rule", e))?,
    );
    Ok(rules)
}

/// What is wrong with the web ACL against what the provider makes (the
/// rate limit itself is `rate_limit`, read back on its own).
fn acl_problems(acl: &WebAcl) -> Vec<String> {
    let mut problems = Vec::new();
    if acl.default_action().is_none_or(|d| d.allow().is_none()) {
        problems.push("the default action blocks, not allows".to_string());
    }
    let mut wanted: Vec<&str> = MANAGED_RULE_GROUPS.to_vec();
    wanted.push(RATE_RULE);
    for name in &wanted {
        if !acl.rules().iter().any(|r| r.name() == *name) {
            problems.push(format!("rule {name} removed"));
        }
    }
    for rule in acl.rules() {
        let name = rule.name();
        if !wanted.contains(&name) {
            problems.push(format!("rule {name} added"));
            continue;
        }
        if !rule
            .visibility_config()
            .is_some_and(|v| v.cloud_watch_metrics_enabled() && v.sampled_requests_enabled())
        {
            problems.push(format!("rule {name}: metrics or sampled requests off"));
        }
        if name == RATE_RULE {
            let shape_ok = rule
                .statement()
                .and_then(|s| s.rate_based_statement())
                .is_some_and(|s| {
                    s.aggregate_key_type() == &RateBasedStatementAggregateKeyType::Ip
                        && s.scope_down_statement().is_none()
                });
            if !shape_ok {
                problems.push(format!("rule {name} no longer counts requests per IP"));
            }
            if rule.action().is_none_or(|a| a.block().is_none()) {
                problems.push(format!("rule {name} does not block"));
            }
        } else {
            let statement_ok = rule
                .statement()
                .and_then(|s| s.managed_rule_group_statement())
                .is_some_and(|s| s.vendor_name() == "AWS" && s.name() == name);
            if !statement_ok {
                problems.push(format!("rule {name} is not the AWS managed rule group"));
            }
            if rule.override_action().is_none_or(|o| o.none().is_none()) {
                problems.push(format!(
                    "rule {name} only counts (its actions are overridden)"
                ));
            }
        }
    }
    problems
}

/// True when the ACL allows by default and has exactly our rules, each
/// with the statement, action and visibility we set. Compared on what we
/// set, not field by field: WAF fills in defaults of its own.
fn acl_converged(acl: &WebAcl, rate_limit: i64) -> bool {
    let default_allow = acl.default_action().is_some_and(|d| d.allow().is_some());
    let names: Vec<&str> = acl.rules().iter().map(Rule::name).collect();
    let mut wanted: Vec<&str> = MANAGED_RULE_GROUPS.to_vec();
    wanted.push(RATE_RULE);
    let mut sorted = names.clone();
    sorted.sort_unstable();
    wanted.sort_unstable();
    if !default_allow || sorted != wanted {
        return false;
    }
    acl.rules().iter().all(|rule| {
        let visible = rule
            .visibility_config()
            .is_some_and(|v| v.cloud_watch_metrics_enabled() && v.sampled_requests_enabled());
        let statement = rule.statement();
        let shape = if rule.name() == RATE_RULE {
            statement
                .and_then(|s| s.rate_based_statement())
                .is_some_and(|s| {
                    s.limit() == rate_limit
                        && s.aggregate_key_type() == &RateBasedStatementAggregateKeyType::Ip
                        && s.scope_down_statement().is_none()
                })
                && rule.action().is_some_and(|a| a.block().is_some())
        } else {
            statement
                .and_then(|s| s.managed_rule_group_statement())
                .is_some_and(|s| s.vendor_name() == "AWS" && s.name() == rule.name())
                && rule.override_action().is_some_and(|o| o.none().is_some())
        };
        visible && shape
    })
}

/// Creates, adopts and repairs one web ACL (`existing`: as read before).
/// Returns what WAF holds after.
async fn ensure_acl(
    ctx: &Ctx,
    spec: &EdgeSpec,
    at: At,
    existing: Option<Acl>,
) -> Result<Acl, ComponentError> {
    let name = at.name(ctx);
    let waf = waf(ctx, at);
    let default_action = DefaultAction::builder()
        .allow(AllowAction::builder().build())
        .build();
    let Some(mut acl) = existing else {
        let mut create = waf
            .create_web_acl()
            .name(&name)
            .scope(at.scope())
            .description(at.description(ctx))
            .default_action(default_action)
            .set_rules(Some(desired_rules(&name, spec.rate_limit)?))
            .visibility_config(visibility(&name, "web-acl")?);
        for (k, v) in ctx.tags(COMPONENT) {
            create = create.tags(waf_tag(&k, &v)?);
        }
        match create.send().await {
            Ok(_) => {}
            // Created meanwhile by a concurrent or killed run: adopt below.
            Err(e) if e.code() == Some("WAFDuplicateItemException") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("create the {} {name}", at.what()),
                    e,
                ))
            }
        }
        let acl = ctx
            .wait_for(
                COMPONENT,
                &format!("{} {name} to be readable", at.what()),
                || read_acl(ctx, at),
            )
            .await?;
        if acl_converged(&acl.acl, spec.rate_limit) {
            return Ok(acl);
        }
        return repair_acl(ctx, spec, at, acl).await;
    };

    if !acl_converged(&acl.acl, spec.rate_limit) {
        acl = repair_acl(ctx, spec, at, acl).await?;
    }
    let stale: Vec<(String, String)> = ctx
        .tags(COMPONENT)
        .into_iter()
        .filter(|(k, v)| acl.tags.get(k) != Some(v))
        .collect();
    if !stale.is_empty() {
        let mut call = waf.tag_resource().resource_arn(acl.acl.arn());
        for (k, v) in &stale {
            call = call.tags(waf_tag(k, v)?);
        }
        call.send()
            .await
            .map_err(|e| aws_error(COMPONENT, format!("tag the {} {name}", at.what()), e))?;
        acl.tags.extend(stale);
    }
    Ok(acl)
}

/// Puts the rules and the default action back (UpdateWebACL replaces
/// them whole). A stale lock token (someone else changed the ACL
/// meanwhile) is retried with a fresh one.
async fn repair_acl(
    ctx: &Ctx,
    spec: &EdgeSpec,
    at: At,
    mut acl: Acl,
) -> Result<Acl, ComponentError> {
    let name = at.name(ctx);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = waf(ctx, at)
            .update_web_acl()
            .name(&name)
            .scope(at.scope())
            .id(acl.acl.id())
            .lock_token(&acl.lock_token)
            .default_action(
                DefaultAction::builder()
                    .allow(AllowAction::builder().build())
                    .build(),
            )
            .set_rules(Some(desired_rules(&name, spec.rate_limit)?))
            .visibility_config(
                acl.acl
                    .visibility_config()
                    .cloned()
                    .map(Ok)
                    .unwrap_or_else(|| visibility(&name, "web-acl"))?,
            )
            .set_description(acl.acl.description().map(str::to_string))
            .send()
            .await;
        match result {
            Ok(_) => break,
            Err(e) if e.code() == Some("WAFOptimisticLockException") && attempts < 3 => {
                acl = read_acl(ctx, at).await?.ok_or_else(|| {
                    conflict(format!(
                        "{} {name} disappeared while it was repaired",
                        at.what()
                    ))
                })?;
            }
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("update the rules of the {} {name}", at.what()),
                    e,
                ))
            }
        }
    }
    read_acl(ctx, at).await?.ok_or_else(|| {
        conflict(format!(
            "{} {name} disappeared while it was repaired",
            at.what()
        ))
    })
}

fn waf_tag(key: &str, value: &str) -> Result<aws_sdk_wafv2::types::Tag, ComponentError> {
    aws_sdk_wafv2::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(|e| invalid("a WAF tag", e))
}

/// Deletes a web ACL; when load balancers still use a regional one,
/// detaches them first. (A CloudFront ACL is let go of by the distribution
/// before it is deleted: see `ensure` and `delete`.)
async fn delete_acl(ctx: &Ctx, at: At, mut acl: Acl) -> Result<(), ComponentError> {
    let name = at.name(ctx);
    let waf = waf(ctx, at);
    let mut attempts = 0;
    loop {
        attempts += 1;
        let result = waf
            .delete_web_acl()
            .name(&name)
            .scope(at.scope())
            .id(acl.acl.id())
            .lock_token(&acl.lock_token)
            .send()
            .await;
        match result {
            Ok(_) => break,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e)
                if at == At::Regional
                    && attempts < 3
                    && e.code() == Some("WAFAssociatedItemException") =>
            {
                disassociate_all(ctx, acl.acl.arn()).await?;
            }
            Err(e) if attempts < 3 && e.code() == Some("WAFOptimisticLockException") => {}
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("delete the {} {name}", at.what()),
                    e,
                ))
            }
        }
        match read_acl(ctx, at).await? {
            Some(fresh) => acl = fresh,
            None => return Ok(()),
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("{} {name} to be deleted", at.what()),
        || async { Ok(find_acl_summary(ctx, at).await?.is_none().then_some(())) },
    )
    .await
}

async fn disassociate_all(ctx: &Ctx, acl_arn: &str) -> Result<(), ComponentError> {
    let waf = waf(ctx, At::Regional);
    let resources = waf
        .list_resources_for_web_acl()
        .web_acl_arn(acl_arn)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!(
                    "list the resources that use the WAF web ACL {}",
                    ctx.prefix()
                ),
                e,
            )
        })?;
    futures_util::future::try_join_all(resources.resource_arns().iter().map(|resource| {
        let waf = waf.clone();
        async move {
            match waf
                .disassociate_web_acl()
                .resource_arn(resource)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_not_found(&e) => Ok(()),
                Err(e) => Err(aws_error(
                    COMPONENT,
                    format!("detach the WAF web ACL from {resource}"),
                    e,
                )),
            }
        }
    }))
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- CloudFront

/// The distribution as read from CloudFront.
#[derive(Clone, Debug)]
struct Cdn {
    id: String,
    arn: String,
    domain_name: String,
    status: String,
    enabled: bool,
    origins: Option<Origins>,
    default_cache_behavior: Option<DefaultCacheBehavior>,
    /// The web ACL it uses (`WebACLId`, an ARN for WAFv2); empty for none.
    web_acl_id: String,
    tags: BTreeMap<String, String>,
    /// Its whole configuration (`GetDistributionConfig`), when read.
    config: Option<DistributionConfig>,
}

impl Cdn {
    /// The API's origin: the one with the provider's id, else (a
    /// distribution of an earlier version) the first.
    fn origin_domain(&self) -> Option<String> {
        let items = self.origins.as_ref().map(|o| o.items()).unwrap_or_default();
        items
            .iter()
            .find(|o| o.id() == ORIGIN_ID)
            .or_else(|| items.first().filter(|o| o.id() != ASSETS_ID))
            .map(|o| o.domain_name().to_string())
    }

    fn serves_assets(&self) -> bool {
        self.default_cache_behavior
            .as_ref()
            .is_some_and(|b| b.target_origin_id() == ASSETS_ID)
    }

    fn aliases(&self) -> Vec<String> {
        let mut a: Vec<String> = self
            .config
            .as_ref()
            .and_then(|c| c.aliases())
            .map(|a| a.items().to_vec())
            .unwrap_or_default();
        a.sort();
        a
    }

    fn certificate_arn(&self) -> Option<String> {
        self.config
            .as_ref()
            .and_then(|c| c.viewer_certificate())
            .and_then(|v| v.acm_certificate_arn())
            .filter(|a| !a.is_empty())
            .map(str::to_string)
    }
}

fn cf_tags(tags: Option<&Tags>) -> BTreeMap<String, String> {
    tags.map(|t| {
        t.items()
            .iter()
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

async fn cdn_tags(ctx: &Ctx, arn: &str) -> Result<BTreeMap<String, String>, ComponentError> {
    let out = ctx
        .aws
        .cloudfront()
        .list_tags_for_resource()
        .resource(arn)
        .send()
        .await
        .map_err(|e| {
            aws_error(
                COMPONENT,
                format!("read the tags of the CloudFront distribution {arn}"),
                e,
            )
        })?;
    Ok(cf_tags(out.tags()))
}

/// Finds our distribution: comment `idis-<env>` and our ownership tag.
async fn read_distribution(ctx: &Ctx) -> Result<Option<Cdn>, ComponentError> {
    let comment = ctx.prefix();
    let cf = ctx.aws.cloudfront();
    let mut candidates = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = cf
            .list_distributions()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| aws_error(COMPONENT, "list the CloudFront distributions", e))?;
        let Some(list) = page.distribution_list else {
            break;
        };
        candidates.extend(
            list.items()
                .iter()
                .filter(|d| d.comment() == comment)
                .cloned(),
        );
        match list.next_marker() {
            Some(next) if list.is_truncated() => marker = Some(next.to_string()),
            _ => break,
        }
    }
    let tagged =
        futures_util::future::try_join_all(candidates.iter().map(|d| cdn_tags(ctx, d.arn())))
            .await?;
    let Some((d, tags)) = candidates
        .into_iter()
        .zip(tagged)
        .find(|(_, tags)| tags.get(TAG_ENVIRONMENT) == Some(&ctx.env))
    else {
        return Ok(None);
    };
    // The summary lacks the logging and the default root object.
    let config = match cf.get_distribution_config().id(d.id()).send().await {
        Ok(out) => out.distribution_config,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!(
                    "read the configuration of the CloudFront distribution {}",
                    d.id()
                ),
                e,
            ))
        }
    };
    Ok(Some(Cdn {
        id: d.id().to_string(),
        arn: d.arn().to_string(),
        domain_name: d.domain_name().to_string(),
        status: d.status().to_string(),
        enabled: d.enabled(),
        origins: d.origins().cloned(),
        default_cache_behavior: d.default_cache_behavior().cloned(),
        web_acl_id: d.web_acl_id().to_string(),
        tags,
        config,
    }))
}

fn cdn_from(
    distribution: &aws_sdk_cloudfront::types::Distribution,
    tags: BTreeMap<String, String>,
) -> Cdn {
    let config = distribution.distribution_config();
    Cdn {
        id: distribution.id().to_string(),
        arn: distribution.arn().to_string(),
        domain_name: distribution.domain_name().to_string(),
        status: distribution.status().to_string(),
        enabled: config.is_some_and(DistributionConfig::enabled),
        origins: config.and_then(|c| c.origins()).cloned(),
        default_cache_behavior: config.and_then(|c| c.default_cache_behavior()).cloned(),
        web_acl_id: config
            .and_then(|c| c.web_acl_id())
            .unwrap_or_default()
            .to_string(),
        tags,
        config: config.cloned(),
    }
}

/// What the distribution is made of: from the spec, and what the CDN's
/// other pieces are (the web ACL, the OAC, the buckets' domains).
#[derive(Clone, Debug, Default)]
struct Want {
    cdn: bool,
    api: Option<String>,
    acl: Option<String>,
    oac: Option<String>,
    assets_domain: String,
    logs_domain: String,
    aliases: Vec<String>,
    certificate: Option<String>,
}

impl Want {
    fn of(ctx: &Ctx, spec: &EdgeSpec, acl: Option<String>, oac: Option<String>) -> Want {
        let mut aliases = spec.aliases.clone();
        aliases.sort();
        Want {
            cdn: spec.cdn,
            api: spec.origin_domain.clone(),
            acl,
            oac,
            assets_domain: cdn_assets::origin_domain(ctx),
            logs_domain: cdn_assets::logs_domain(ctx),
            aliases,
            certificate: spec.certificate_arn.clone(),
        }
    }

    /// What a refresh judges against: the stored block and what was read
    /// (the web ACL is judged on its own).
    fn of_state(state: &EdgeState, stored: &EdgeSpec) -> Want {
        Want {
            cdn: stored.cdn,
            api: stored.origin_domain.clone(),
            acl: None,
            oac: state.oac_id.clone(),
            assets_domain: state.assets_domain.clone(),
            logs_domain: state.logs_domain.clone(),
            aliases: stored.aliases.clone(),
            certificate: stored.certificate_arn.clone(),
        }
    }

    fn shape(&self) -> Vec<String> {
        match self.config("-") {
            Ok(config) => shape(&config),
            Err(e) => vec![format!("(cannot build: {e})")],
        }
    }

    /// A whole new configuration (`caller_reference` names the create).
    fn config(&self, caller_reference: &str) -> Result<DistributionConfig, ComponentError> {
        let mut config = DistributionConfig::builder()
            .caller_reference(caller_reference)
            .enabled(true)
            .origins(
                Origins::builder()
                    .quantity(0)
                    .set_items(Some(Vec::new()))
                    .build()
                    .map_err(|e| invalid("the origins", e))?,
            )
            .default_cache_behavior(
                DefaultCacheBehavior::builder()
                    .target_origin_id(ORIGIN_ID)
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .build()
                    .map_err(|e| invalid("the default cache behavior", e))?,
            )
            .comment("")
            .build()
            .map_err(|e| invalid("the distribution", e))?;
        self.apply(&mut config)?;
        Ok(config)
    }

    /// Sets everything the provider makes on `config` (kept otherwise).
    fn apply(&self, config: &mut DistributionConfig) -> Result<(), ComponentError> {
        let mut origins = Vec::new();
        if self.cdn {
            let mut assets = Origin::builder()
                .id(ASSETS_ID)
                .domain_name(&self.assets_domain)
                // With an OAC the identity is empty ("Restrict access to
                // an Amazon S3 origin", CloudFront Developer Guide).
                .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build());
            if let Some(oac) = &self.oac {
                assets = assets.origin_access_control_id(oac);
            }
            origins.push(
                assets
                    .build()
                    .map_err(|e| invalid("the assets origin", e))?,
            );
        }
        if let Some(api) = &self.api {
            let protocols = OriginSslProtocols::builder()
                .quantity(1)
                .items(SslProtocol::TlSv12)
                .build()
                .map_err(|e| invalid("the origin TLS protocols", e))?;
            let custom = CustomOriginConfig::builder()
                .http_port(80)
                .https_port(443)
                .origin_protocol_policy(OriginProtocolPolicy::HttpsOnly)
                .origin_ssl_protocols(protocols)
                .build()
                .map_err(|e| invalid("the custom origin", e))?;
            origins.push(
                Origin::builder()
                    .id(ORIGIN_ID)
                    .domain_name(api)
                    .custom_origin_config(custom)
                    .build()
                    .map_err(|e| invalid("the origin", e))?,
            );
        }
        config.origins = Some(
            Origins::builder()
                .quantity(origins.len() as i32)
                .set_items(Some(origins))
                .build()
                .map_err(|e| invalid("the origins", e))?,
        );
        let mut default = DefaultCacheBehavior::builder()
            .target_origin_id(if self.cdn { ASSETS_ID } else { ORIGIN_ID })
            .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
            .cache_policy_id(CACHING_OPTIMIZED_POLICY_ID)
            .compress(true);
        if self.cdn {
            default = default.response_headers_policy_id(SECURITY_HEADERS_POLICY_ID);
        }
        config.default_cache_behavior = Some(
            default
                .build()
                .map_err(|e| invalid("the default cache behavior", e))?,
        );
        let mut behaviors = Vec::new();
        if let (true, Some(_)) = (self.cdn, &self.api) {
            let all = [
                Method::Get,
                Method::Head,
                Method::Options,
                Method::Put,
                Method::Post,
                Method::Patch,
                Method::Delete,
            ];
            behaviors.push(
                CacheBehavior::builder()
                    .path_pattern(API_PATH)
                    .target_origin_id(ORIGIN_ID)
                    .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                    .cache_policy_id(CACHING_DISABLED_POLICY_ID)
                    .origin_request_policy_id(ALL_VIEWER_EXCEPT_HOST_HEADER_POLICY_ID)
                    .response_headers_policy_id(SECURITY_HEADERS_POLICY_ID)
                    .allowed_methods(
                        AllowedMethods::builder()
                            .quantity(all.len() as i32)
                            .set_items(Some(all.to_vec()))
                            .cached_methods(
                                CachedMethods::builder()
                                    .quantity(2)
                                    .items(Method::Get)
                                    .items(Method::Head)
                                    .build()
                                    .map_err(|e| invalid("the cached methods", e))?,
                            )
                            .build()
                            .map_err(|e| invalid("the allowed methods", e))?,
                    )
                    .build()
                    .map_err(|e| invalid("the /api/* behaviour", e))?,
            );
        }
        config.cache_behaviors = Some(
            CacheBehaviors::builder()
                .quantity(behaviors.len() as i32)
                .set_items((!behaviors.is_empty()).then_some(behaviors))
                .build()
                .map_err(|e| invalid("the cache behaviours", e))?,
        );
        if self.cdn {
            config.default_root_object = Some("index.html".to_string());
            // Standard logs (legacy) into the ACL-enabled log bucket.
            config.logging = Some(
                LoggingConfig::builder()
                    .enabled(true)
                    .include_cookies(false)
                    .bucket(&self.logs_domain)
                    .prefix(cdn_assets::LOG_PREFIX)
                    .build(),
            );
        }
        config.aliases = Some(
            Aliases::builder()
                .quantity(self.aliases.len() as i32)
                .set_items((!self.aliases.is_empty()).then(|| self.aliases.clone()))
                .build()
                .map_err(|e| invalid("the aliases", e))?,
        );
        config.viewer_certificate = Some(match &self.certificate {
            Some(arn) => ViewerCertificate::builder()
                .acm_certificate_arn(arn)
                .ssl_support_method(SslSupportMethod::SniOnly)
                .minimum_protocol_version(MinimumProtocolVersion::TlSv122021)
                .cloud_front_default_certificate(false)
                .build(),
            None => ViewerCertificate::builder()
                .cloud_front_default_certificate(true)
                .build(),
        });
        config.web_acl_id = Some(self.acl.clone().unwrap_or_default());
        config.enabled = true;
        Ok(())
    }
}

/// What the provider makes of a distribution's configuration, one line
/// per piece (aliases and the certificate are settings of their own, and
/// the web ACL is judged with the ACL).
fn shape(config: &DistributionConfig) -> Vec<String> {
    let mut lines = Vec::new();
    if !config.enabled() {
        lines.push("disabled".to_string());
    }
    for o in config.origins().map(|o| o.items()).unwrap_or_default() {
        let kind = match (o.custom_origin_config(), o.origin_access_control_id()) {
            (Some(c), _) => format!("custom {}", c.origin_protocol_policy().as_str()),
            (None, Some(oac)) if !oac.is_empty() => {
                format!("s3 through the origin access control {oac}")
            }
            (None, _) => "s3 without an origin access control".to_string(),
        };
        lines.push(format!("origin {} {} {kind}", o.id(), o.domain_name()));
    }
    let behaviour = |path: &str,
                     target: &str,
                     viewer: &ViewerProtocolPolicy,
                     cache: Option<&str>,
                     request: Option<&str>,
                     headers: Option<&str>,
                     methods: usize| {
        let opt = |v: Option<&str>| v.filter(|v| !v.is_empty()).unwrap_or("none").to_string();
        format!(
            "behaviour {path} to {target}, viewers {}, cache policy {}, origin request policy {}, response headers policy {}, {methods} methods",
            viewer.as_str(),
            opt(cache),
            opt(request),
            opt(headers)
        )
    };
    if let Some(b) = config.default_cache_behavior() {
        lines.push(behaviour(
            "default",
            b.target_origin_id(),
            b.viewer_protocol_policy(),
            b.cache_policy_id(),
            b.origin_request_policy_id(),
            b.response_headers_policy_id(),
            b.allowed_methods().map(|m| m.items().len()).unwrap_or(2),
        ));
    }
    for b in config
        .cache_behaviors()
        .map(|b| b.items())
        .unwrap_or_default()
    {
        lines.push(behaviour(
            b.path_pattern(),
            b.target_origin_id(),
            b.viewer_protocol_policy(),
            b.cache_policy_id(),
            b.origin_request_policy_id(),
            b.response_headers_policy_id(),
            b.allowed_methods().map(|m| m.items().len()).unwrap_or(2),
        ));
    }
    if let Some(root) = config.default_root_object().filter(|r| !r.is_empty()) {
        lines.push(format!("default root object {root}"));
    }
    if let Some(l) = config.logging().filter(|l| l.enabled()) {
        lines.push(format!(
            "access logs to {} under {}",
            l.bucket(),
            l.prefix()
        ));
    }
    if let Some(v) = config
        .viewer_certificate()
        .filter(|v| v.acm_certificate_arn().is_some_and(|a| !a.is_empty()))
    {
        lines.push(format!(
            "certificate served with {} and {} at least",
            v.ssl_support_method().map(|m| m.as_str()).unwrap_or("?"),
            v.minimum_protocol_version()
                .map(|m| m.as_str())
                .unwrap_or("?")
        ));
    }
    lines.sort();
    lines
}

/// The lines the provider makes that are missing, and the ones it does
/// not make.
fn shape_problems(want: &[String], have: &[String]) -> Vec<String> {
    let mut problems: Vec<String> = want
        .iter()
        .filter(|l| !have.contains(l))
        .map(|l| format!("missing: {l}"))
        .collect();
    problems.extend(
        have.iter()
            .filter(|l| !want.contains(l))
            .map(|l| format!("not made by the provider: {l}")),
    );
    problems
}

/// Creates, adopts or repairs the distribution (serving `domain`, behind
/// the web ACL `acl` or none), and waits until CloudFront has deployed it.
async fn ensure_distribution(
    ctx: &Ctx,
    want: &Want,
    existing: Option<Cdn>,
) -> Result<Cdn, ComponentError> {
    let domain = want.api.as_deref().unwrap_or("the assets bucket");
    let comment = ctx.prefix();
    let cf = ctx.aws.cloudfront();
    let mut cdn = match existing {
        None => {
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            let mut config = want.config(&format!("{comment}-{millis}"))?;
            config.comment = comment.clone();
            let mut tags = Tags::builder();
            for (k, v) in ctx.tags(COMPONENT) {
                tags = tags.items(
                    aws_sdk_cloudfront::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .map_err(|e| invalid("a CloudFront tag", e))?,
                );
            }
            let created = cf
                .create_distribution_with_tags()
                .distribution_config_with_tags(
                    DistributionConfigWithTags::builder()
                        .distribution_config(config)
                        .tags(tags.build())
                        .build(),
                )
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("create the CloudFront distribution {comment} for {domain}"),
                        e,
                    )
                })?;
            let distribution = created.distribution().ok_or_else(|| {
                conflict("CloudFront answered the create call without a distribution")
            })?;
            cdn_from(distribution, ctx.tags(COMPONENT))
        }
        Some(cdn)
            if cdn.config.as_ref().is_some_and(|c| {
                shape(c) == want.shape()
                    && cdn.web_acl_id == want.acl.clone().unwrap_or_default()
                    && cdn.aliases() == want.aliases
                    && cdn.certificate_arn() == want.certificate
            }) =>
        {
            cdn
        }
        Some(cdn) => {
            let current = cf
                .get_distribution_config()
                .id(&cdn.id)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("read the CloudFront distribution {}", cdn.id),
                        e,
                    )
                })?;
            // Keep everything else of the configuration as it is.
            let mut config = current.distribution_config().cloned().ok_or_else(|| {
                conflict(format!(
                    "CloudFront returned no configuration for {}",
                    cdn.id
                ))
            })?;
            want.apply(&mut config)?;
            let updated = cf
                .update_distribution()
                .id(&cdn.id)
                .set_if_match(current.e_tag().map(str::to_string))
                .distribution_config(config)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!(
                            "update the CloudFront distribution {} to serve {domain}",
                            cdn.id
                        ),
                        e,
                    )
                })?;
            match updated.distribution() {
                Some(d) => cdn_from(d, cdn.tags),
                None => cdn,
            }
        }
    };

    let stale: Vec<(String, String)> = ctx
        .tags(COMPONENT)
        .into_iter()
        .filter(|(k, v)| cdn.tags.get(k) != Some(v))
        .collect();
    if !stale.is_empty() {
        let mut tags = Tags::builder();
        for (k, v) in &stale {
            tags = tags.items(
                aws_sdk_cloudfront::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| invalid("a CloudFront tag", e))?,
            );
        }
        cf.tag_resource()
            .resource(&cdn.arn)
            .tags(tags.build())
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("tag the CloudFront distribution {}", cdn.id),
                    e,
                )
            })?;
        cdn.tags.extend(stale);
    }

    if cdn.status != "Deployed" {
        let tags = cdn.tags.clone();
        let id = cdn.id.clone();
        cdn = ctx
            .wait_for(
                COMPONENT,
                &format!("CloudFront distribution {id} to be deployed"),
                || async {
                    let got = get_distribution(ctx, &id).await?.ok_or_else(|| {
                        conflict(format!(
                            "CloudFront distribution {id} disappeared while it was deployed"
                        ))
                    })?;
                    Ok((got.0.status() == "Deployed").then(|| cdn_from(&got.0, tags.clone())))
                },
            )
            .await?;
    }
    Ok(cdn)
}

async fn get_distribution(
    ctx: &Ctx,
    id: &str,
) -> Result<Option<(aws_sdk_cloudfront::types::Distribution, Option<String>)>, ComponentError> {
    match ctx.aws.cloudfront().get_distribution().id(id).send().await {
        Ok(out) => {
            let etag = out.e_tag().map(str::to_string);
            Ok(out.distribution.map(|d| (d, etag)))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("read the CloudFront distribution {id}"),
            e,
        )),
    }
}

/// Disables the distribution, waits until CloudFront has deployed that,
/// then deletes it with the ETag of that state and waits until it is gone.
async fn delete_distribution(ctx: &Ctx, cdn: &Cdn) -> Result<(), ComponentError> {
    let cf = ctx.aws.cloudfront();
    let id = cdn.id.as_str();
    let current = match cf.get_distribution_config().id(id).send().await {
        Ok(c) => c,
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("read the CloudFront distribution {id}"),
                e,
            ))
        }
    };
    if let Some(config) = current.distribution_config().filter(|c| c.enabled()) {
        let mut disabled = config.clone();
        disabled.enabled = false;
        cf.update_distribution()
            .id(id)
            .set_if_match(current.e_tag().map(str::to_string))
            .distribution_config(disabled)
            .send()
            .await
            .map_err(|e| {
                aws_error(
                    COMPONENT,
                    format!("disable the CloudFront distribution {id}"),
                    e,
                )
            })?;
    }
    let etag = ctx
        .wait_for(
            COMPONENT,
            &format!("CloudFront distribution {id} to be disabled and deployed"),
            || async {
                Ok(match get_distribution(ctx, id).await? {
                    None => Some(None),
                    Some((d, etag)) => {
                        let disabled = d.distribution_config().is_some_and(|c| !c.enabled());
                        (disabled && d.status() == "Deployed").then_some(Some(etag))
                    }
                })
            },
        )
        .await?;
    let Some(etag) = etag else {
        return Ok(());
    };
    match cf
        .delete_distribution()
        .id(id)
        .set_if_match(etag)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e) if is_not_found(&e) => return Ok(()),
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("delete the CloudFront distribution {id}"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("CloudFront distribution {id} to be deleted"),
        || async { Ok(get_distribution(ctx, id).await?.is_none().then_some(())) },
    )
    .await
}

// ---------------------------------------------------------------- Shield

/// Whether the account has an active Shield Advanced subscription, which
/// every protection needs (`DescribeSubscription`; this provider never
/// subscribes on its own: a subscription is a one-year commitment).
pub async fn shield_subscribed(ctx: &Ctx) -> Result<bool, ComponentError> {
    match shield(ctx).describe_subscription().send().await {
        Ok(out) => Ok(out.subscription().is_some()),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(aws_error(
            COMPONENT,
            "check the Shield Advanced subscription (shield:DescribeSubscription)",
            e,
        )),
    }
}

async fn read_protection(
    ctx: &Ctx,
) -> Result<Option<aws_sdk_shield::types::Protection>, ComponentError> {
    let name = ctx.prefix();
    let client = shield(ctx);
    let mut token: Option<String> = None;
    loop {
        let result = client
            .list_protections()
            .inclusion_filters(
                aws_sdk_shield::types::InclusionProtectionFilters::builder()
                    .protection_names(&name)
                    .build(),
            )
            .set_next_token(token.take())
            .send()
            .await;
        let page = match result {
            Ok(p) => p,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => {
                return Err(aws_error(
                    COMPONENT,
                    format!("look up the Shield protection {name}"),
                    e,
                ))
            }
        };
        if let Some(p) = page
            .protections()
            .iter()
            .find(|p| p.name() == Some(name.as_str()))
        {
            return Ok(Some(p.clone()));
        }
        match page.next_token() {
            Some(next) => token = Some(next.to_string()),
            None => return Ok(None),
        }
    }
}

async fn delete_protection(
    ctx: &Ctx,
    protection: &aws_sdk_shield::types::Protection,
) -> Result<(), ComponentError> {
    let Some(id) = protection.id() else {
        return Ok(());
    };
    match shield(ctx)
        .delete_protection()
        .protection_id(id)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            COMPONENT,
            format!("delete the Shield protection {} ({id})", ctx.prefix()),
            e,
        )),
    }
}

/// Makes the protection cover the distribution; removes it when DDoS
/// protection is off, when there is no distribution, or when it covers
/// anything else (an Elastic IP of a NAT gateway, as 0.1 made: egress).
async fn ensure_shield(
    ctx: &Ctx,
    spec: &EdgeSpec,
    cdn: Option<&Cdn>,
    existing: Option<aws_sdk_shield::types::Protection>,
) -> Result<Option<aws_sdk_shield::types::Protection>, ComponentError> {
    let name = ctx.prefix();
    let target = match cdn {
        Some(cdn) if spec.ddos_protection => cdn.arn.clone(),
        _ => {
            if let Some(p) = &existing {
                delete_protection(ctx, p).await?;
                ctx.wait_for(
                    COMPONENT,
                    &format!("Shield protection {name} to be deleted"),
                    || async { Ok(read_protection(ctx).await?.is_none().then_some(())) },
                )
                .await?;
            }
            return Ok(None);
        }
    };
    if let Some(p) = &existing {
        if p.resource_arn() == Some(target.as_str()) {
            return Ok(existing);
        }
        delete_protection(ctx, p).await?;
        ctx.wait_for(
            COMPONENT,
            &format!("Shield protection {name} to be deleted"),
            || async { Ok(read_protection(ctx).await?.is_none().then_some(())) },
        )
        .await?;
    }
    let client = shield(ctx);
    let mut create = client.create_protection().name(&name).resource_arn(&target);
    for (k, v) in ctx.tags(COMPONENT) {
        create = create.tags(
            aws_sdk_shield::types::Tag::builder()
                .key(k)
                .value(v)
                .build(),
        );
    }
    match create.send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {
            // A protection covers the target already: ours (a killed run)
            // is adopted below, anyone else's is reported.
            let covering = client
                .describe_protection()
                .resource_arn(&target)
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        COMPONENT,
                        format!("read the Shield protection of {target}"),
                        e,
                    )
                })?;
            let other = covering.protection().and_then(|p| p.name()).unwrap_or("?");
            if other != name {
                return Err(conflict(format!(
                    "{target} is already covered by the Shield protection {other:?}, which this environment does not own; delete it or rename it to {name}"
                )));
            }
        }
        Err(e) => {
            return Err(aws_error(
                COMPONENT,
                format!("create the Shield protection {name} for {target} (Shield Advanced protections need an active Shield Advanced subscription on the account)"),
                e,
            ))
        }
    }
    ctx.wait_for(
        COMPONENT,
        &format!("Shield protection {name} to be readable"),
        || async {
            Ok(read_protection(ctx)
                .await?
                .filter(|p| p.resource_arn() == Some(target.as_str())))
        },
    )
    .await
    .map(Some)
}

// ---------------------------------------------------------------- find / ensure / delete

/// Judges what the provider makes of the edge without a knob.
fn judge(ctx: &Ctx, read: &Read) -> Verdicts {
    let (protection, cdn) = (read.protection.as_ref(), read.cdn.as_ref());
    let mut v = Verdicts::new();
    let want = ctx.tags(COMPONENT);
    let mut tags = Vec::new();
    for (at, acl) in [(At::Regional, &read.acl), (At::Cdn, &read.cdn_acl)] {
        let Some(acl) = acl else { continue };
        let name = at.name(ctx);
        v.judge(
            &GUARDS[WEB_ACL],
            acl_problems(&acl.acl).into_iter().map(|p| match at {
                At::Regional => p,
                At::Cdn => format!("{name}: {p}"),
            }),
        );
        tags.extend(super::tag_problems(
            &format!("web ACL {name}"),
            &acl.tags,
            &want,
        ));
    }
    if let Some(cdn) = cdn {
        // Its make-up is judged against the block (`Component::read`).
        tags.extend(super::tag_problems(
            &format!("distribution {}", cdn.id),
            &cdn.tags,
            &want,
        ));
    }
    if let Some(p) = protection {
        let target = p.resource_arn().unwrap_or_default();
        v.judge(
            &GUARDS[SHIELD],
            match cdn {
                Some(cdn) if target == cdn.arn => None,
                Some(cdn) => Some(format!(
                    "the protection covers {target}, not the distribution {}",
                    cdn.arn
                )),
                None => Some(format!(
                    "the protection covers {target}; without a distribution the provider protects nothing itself"
                )),
            },
        );
    }
    v.judge(&GUARDS[TAGS], tags);
    v
}

/// Everything of the edge as read.
struct Read {
    acl: Option<Acl>,
    cdn_acl: Option<Acl>,
    protection: Option<aws_sdk_shield::types::Protection>,
    cdn: Option<Cdn>,
    assets: cdn_assets::Seen,
}

fn state(ctx: &Ctx, read: &Read) -> EdgeState {
    let (acl, protection, cdn) = (
        read.acl.as_ref(),
        read.protection.as_ref(),
        read.cdn.as_ref(),
    );
    EdgeState {
        web_acl_arn: acl.map(|a| a.acl.arn().to_string()),
        web_acl_id: acl.map(|a| a.acl.id().to_string()),
        rate_limit: acl.and_then(Acl::rate_limit),
        web_acl_rules: acl
            .map(|a| {
                let mut rules: Vec<&Rule> = a.acl.rules().iter().collect();
                rules.sort_by_key(|r| r.priority());
                rules.iter().map(|r| r.name().to_string()).collect()
            })
            .unwrap_or_default(),
        web_acl_tags: acl
            .map(|a| user_visible_tags(a.tags.clone()))
            .unwrap_or_default(),
        shield_protection_id: protection.and_then(|p| p.id()).map(str::to_string),
        shield_resource_arn: protection
            .and_then(|p| p.resource_arn())
            .map(str::to_string),
        cdn_distribution_id: cdn.map(|c| c.id.clone()),
        cdn_domain_name: cdn.map(|c| c.domain_name.clone()),
        cdn_arn: cdn.map(|c| c.arn.clone()),
        cdn_origin_domain: cdn.and_then(Cdn::origin_domain),
        cdn_enabled: cdn.is_some_and(|c| c.enabled),
        cdn_web_acl_arn: read.cdn_acl.as_ref().map(|a| a.acl.arn().to_string()),
        cdn_uses_web_acl: cdn.map(|c| c.web_acl_id.clone()),
        web_acl_associations: acl.map(|a| a.resources.clone()).unwrap_or_default(),
        cdn_serves_assets: cdn.is_some_and(Cdn::serves_assets),
        cdn_aliases: cdn.map(Cdn::aliases).unwrap_or_default(),
        cdn_certificate_arn: cdn.and_then(Cdn::certificate_arn),
        cdn_shape: cdn
            .and_then(|c| c.config.as_ref())
            .map(shape)
            .unwrap_or_default(),
        assets_bucket: read
            .assets
            .assets
            .as_ref()
            .map(|_| cdn_assets::assets_bucket(ctx)),
        assets_problems: (read.assets.assets.is_some()
            || read.assets.logs.is_some()
            || read.assets.oac_id.is_some())
        .then(|| {
            cdn_assets::problems(
                (
                    &cdn_assets::assets_bucket(ctx),
                    &cdn_assets::logs_bucket(ctx),
                ),
                partition(&ctx.region),
                &read.assets,
                cdn.map(|c| c.arn.as_str()),
                &ctx.tags(COMPONENT),
            )
        }),
        oac_id: read.assets.oac_id.clone(),
        // What the distribution's wanted shape names, while there is one.
        assets_domain: cdn
            .map(|_| cdn_assets::origin_domain(ctx))
            .unwrap_or_default(),
        logs_domain: cdn
            .map(|_| cdn_assets::logs_domain(ctx))
            .unwrap_or_default(),
        verdicts: judge(ctx, read),
    }
}

/// What exists of the edge; `None` when none of its pieces exists.
pub async fn find(ctx: &Ctx) -> Result<Option<EdgeState>, ComponentError> {
    let (acl, cdn_acl, protection, cdn, assets) = tokio::try_join!(
        Box::pin(read_acl(ctx, At::Regional)),
        Box::pin(read_acl(ctx, At::Cdn)),
        Box::pin(read_protection(ctx)),
        Box::pin(read_distribution(ctx)),
        Box::pin(cdn_assets::read(ctx)),
    )?;
    let read = Read {
        acl,
        cdn_acl,
        protection,
        cdn,
        assets,
    };
    if read.acl.is_none()
        && read.cdn_acl.is_none()
        && read.protection.is_none()
        && read.cdn.is_none()
        && read.assets.assets.is_none()
    {
        return Ok(None);
    }
    Ok(Some(state(ctx, &read)))
}

/// The regional ACL alongside the CloudFront side, where order matters:
/// the CloudFront ACL before the distribution that names it, the
/// distribution before its protection; what goes, goes the other way
/// round (protection, distribution, then the ACL it let go of).
pub async fn ensure(ctx: &Ctx, spec: &EdgeSpec) -> Result<EdgeState, ComponentError> {
    let regional = ensure_regional_acl(ctx, spec);
    let cdn_side = async {
        let (mut protection, existing, old_acl, mut assets) = tokio::try_join!(
            Box::pin(read_protection(ctx)),
            Box::pin(read_distribution(ctx)),
            Box::pin(read_acl(ctx, At::Cdn)),
            Box::pin(cdn_assets::read(ctx)),
        )?;
        let (cdn_acl, old_acl) = match (spec.distribution(), spec.waf) {
            (true, true) => (
                Some(Box::pin(ensure_acl(ctx, spec, At::Cdn, old_acl)).await?),
                None,
            ),
            _ => (None, old_acl),
        };
        let acl_arn = cdn_acl.as_ref().map(|a| a.acl.arn().to_string());
        // The assets bucket and its OAC before the distribution that
        // names them; the bucket's policy names the distribution, after it.
        let oac = if spec.cdn {
            Box::pin(cdn_assets::ensure_buckets(ctx, &assets)).await?;
            Some(Box::pin(cdn_assets::ensure_oac(ctx, assets.oac_id.clone())).await?)
        } else {
            None
        };
        let want = Want::of(ctx, spec, acl_arn.clone(), oac);
        let cdn = match (spec.distribution(), existing) {
            (false, None) => None,
            (false, Some(old)) => {
                // The protection must not outlive what it covers.
                if let Some(p) = protection.take_if(|p| p.resource_arn() == Some(old.arn.as_str()))
                {
                    Box::pin(delete_protection(ctx, &p)).await?;
                }
                Box::pin(delete_distribution(ctx, &old)).await?;
                None
            }
            (true, existing) => Some(Box::pin(ensure_distribution(ctx, &want, existing)).await?),
        };
        if let (true, Some(cdn)) = (spec.cdn, &cdn) {
            let current = Box::pin(cdn_assets::read_bucket(
                ctx,
                &cdn_assets::assets_bucket(ctx),
            ))
            .await?
            .and_then(|b| b.policy);
            Box::pin(cdn_assets::ensure_policy(ctx, current.as_deref(), &cdn.arn)).await?;
        }
        assets = Box::pin(cdn_assets::read(ctx)).await?;
        if let Some(acl) = old_acl {
            Box::pin(delete_acl(ctx, At::Cdn, acl)).await?;
        }
        let protection = Box::pin(ensure_shield(ctx, spec, cdn.as_ref(), protection)).await?;
        Ok::<_, ComponentError>((cdn_acl, protection, cdn, assets))
    };
    let (acl, (cdn_acl, protection, cdn, assets)) =
        tokio::try_join!(Box::pin(regional), Box::pin(cdn_side))?;
    Ok(state(
        ctx,
        &Read {
            acl,
            cdn_acl,
            protection,
            cdn,
            assets,
        },
    ))
}

/// A regional web ACL `idis-<env>` as read in another site's region (the
/// DR site's load balancers need one of their own: WAF associates a
/// regional web ACL only with resources of its region, "Associating or
/// disassociating protection", AWS WAF Developer Guide).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionalAcl {
    pub arn: String,
    /// The rate rule's limit, when it has one.
    pub rate_limit: Option<i64>,
    /// How it differs from what the provider makes, but for the limit:
    /// the rules, the default action and the ownership tags.
    pub problems: Vec<String>,
}

/// The regional web ACL of `ctx`'s region, judged as the primary's is.
pub async fn read_regional(ctx: &Ctx) -> Result<Option<RegionalAcl>, ComponentError> {
    Ok(read_acl(ctx, At::Regional).await?.map(|acl| {
        let name = At::Regional.name(ctx);
        let mut problems = acl_problems(&acl.acl);
        problems.extend(super::tag_problems(
            &format!("web ACL {name}"),
            &acl.tags,
            &ctx.tags(COMPONENT),
        ));
        RegionalAcl {
            arn: acl.acl.arn().to_string(),
            rate_limit: acl.rate_limit(),
            problems,
        }
    }))
}

/// The regional web ACL of `ctx`'s region as the edge block says: made
/// and repaired with `waf`, deleted without. Returns its ARN.
pub async fn ensure_regional(ctx: &Ctx, spec: &EdgeSpec) -> Result<Option<String>, ComponentError> {
    Ok(ensure_regional_acl(ctx, spec)
        .await?
        .map(|acl| acl.acl.arn().to_string()))
}

async fn ensure_regional_acl(ctx: &Ctx, spec: &EdgeSpec) -> Result<Option<Acl>, ComponentError> {
    match (spec.waf, read_acl(ctx, At::Regional).await?) {
        (true, existing) => Box::pin(ensure_acl(ctx, spec, At::Regional, existing))
            .await
            .map(Some),
        (false, Some(acl)) => Box::pin(delete_acl(ctx, At::Regional, acl))
            .await
            .map(|()| None),
        (false, None) => Ok(None),
    }
}

/// Deletes the regional web ACL of `ctx`'s region, detaching what uses it.
pub async fn delete_regional(ctx: &Ctx) -> Result<(), ComponentError> {
    match read_acl(ctx, At::Regional).await? {
        Some(acl) => Box::pin(delete_acl(ctx, At::Regional, acl)).await,
        None => Ok(()),
    }
}

/// Removes the protection, then the distribution (disable, wait, delete)
/// and the CloudFront ACL it used, and the regional web ACL alongside.
/// Returns warnings for the plan/apply output (none today).
pub async fn delete(ctx: &Ctx) -> Result<Vec<String>, ComponentError> {
    let cdn_side = async {
        let (protection, cdn) = tokio::try_join!(read_protection(ctx), read_distribution(ctx))?;
        if let Some(p) = &protection {
            delete_protection(ctx, p).await?;
            let name = ctx.prefix();
            ctx.wait_for(
                COMPONENT,
                &format!("Shield protection {name} to be deleted"),
                || async { Ok(read_protection(ctx).await?.is_none().then_some(())) },
            )
            .await?;
        }
        if let Some(cdn) = &cdn {
            delete_distribution(ctx, cdn).await?;
        }
        if let Some(acl) = read_acl(ctx, At::Cdn).await? {
            delete_acl(ctx, At::Cdn, acl).await?;
        }
        Box::pin(cdn_assets::delete(ctx)).await
    };
    let (warnings, ()) = tokio::try_join!(cdn_side, delete_regional(ctx))?;
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(cdn: bool, api: Option<&str>) -> Want {
        Want {
            cdn,
            api: api.map(str::to_string),
            acl: None,
            oac: Some("E2OAC".into()),
            assets_domain: "idis-p-assets-1-us-east-1.s3.us-east-1.amazonaws.com".into(),
            logs_domain: "idis-p-cdn-logs-1-us-east-1.s3.amazonaws.com".into(),
            aliases: Vec::new(),
            certificate: None,
        }
    }

    #[test]
    fn with_cdn_the_assets_are_the_default_origin_and_the_api_is_under_api() {
        let shape = want(true, Some("api.example.com")).shape();
        assert!(shape.contains(&"origin idis-assets idis-p-assets-1-us-east-1.s3.us-east-1.amazonaws.com s3 through the origin access control E2OAC".to_string()), "{shape:#?}");
        assert!(shape.contains(&"origin idis-origin api.example.com custom https-only".to_string()));
        assert!(shape.iter().any(|l| l
            .starts_with("behaviour default to idis-assets, viewers redirect-to-https")
            && l.contains(SECURITY_HEADERS_POLICY_ID)));
        assert!(shape
            .iter()
            .any(|l| l.starts_with("behaviour /api/* to idis-origin")
                && l.contains(CACHING_DISABLED_POLICY_ID)
                && l.ends_with("7 methods")));
        assert!(shape.contains(
            &"access logs to idis-p-cdn-logs-1-us-east-1.s3.amazonaws.com under cloudfront/"
                .to_string()
        ));
        // The behaviour gone is a problem that names it; the API alone has none.
        let without: Vec<String> = shape
            .iter()
            .filter(|l| !l.contains("/api/*"))
            .cloned()
            .collect();
        let problems = shape_problems(&shape, &without);
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("missing: behaviour /api/*"),
            "{problems:?}"
        );
        let api_only = want(false, Some("api.example.com")).shape();
        assert!(!api_only
            .iter()
            .any(|l| l.contains("/api/*") || l.contains("idis-assets")));
    }

    #[test]
    fn certificates_come_from_us_east_1() {
        assert!(is_cloudfront_certificate(
            "arn:aws:acm:us-east-1:123456789012:certificate/abc"
        ));
        assert!(!is_cloudfront_certificate(
            "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
        ));
        assert!(!is_cloudfront_certificate(
            "arn:aws:acm:us-east-1:123456789012:certificate/"
        ));
    }
}
