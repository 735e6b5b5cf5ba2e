//! IAM roles the environment makes for others to assume (a service
//! account, an AWS service, a monitoring vendor): read back whole, made and
//! repaired to exactly what the component wants, deleted with their
//! policies. One place for what every role-making component needs.
//!
//! A role is read as IAM has it: its trust policy, its one inline policy
//! (by the name the component gives it; other inline policies are named,
//! not read, since any is a problem), the managed policies attached, and
//! its tags. `ensure` makes the trust policy, the inline policy and the
//! attached policies exactly as wanted: another inline policy is deleted,
//! another attached policy detached. Tags others add are left alone.
//! Documents are compared by meaning (statements in any order, single
//! values and lists alike), as IAM returns them URL-encoded.

use std::collections::BTreeMap;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::{aws_error, is_not_found, ComponentError, Ctx};

/// One role as IAM has it; documents decoded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleSeen {
    pub arn: String,
    pub trust: String,
    /// Inline policies by name.
    pub inline: BTreeMap<String, String>,
    pub attached: Vec<String>,
    pub tags: BTreeMap<String, String>,
}

/// A role as the component wants it.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub name: String,
    /// Set at creation (IAM keeps it; not compared afterwards).
    pub description: String,
    pub trust: Json,
    /// The one inline policy: (name, document).
    pub inline: Option<(&'static str, Json)>,
    /// AWS managed or customer managed policies attached, by ARN.
    pub attached: Vec<String>,
}

/// IAM tags from a map.
pub fn iam_tags(
    component: &'static str,
    tags: &BTreeMap<String, String>,
) -> Result<Vec<aws_sdk_iam::types::Tag>, ComponentError> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| ComponentError::Conflict {
                    component,
                    message: format!("invalid IAM tag {k:?}: {e}"),
                })
        })
        .collect()
}

/// The role `name` as IAM has it; None when there is none. `policy` is the
/// name of the inline policy the component writes (read in full).
pub async fn read(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
    policy: Option<&str>,
) -> Result<Option<RoleSeen>, ComponentError> {
    let iam = ctx.aws.iam();
    let ours = async {
        match policy {
            Some(p) => Some(
                iam.get_role_policy()
                    .role_name(name)
                    .policy_name(p)
                    .send()
                    .await,
            ),
            None => None,
        }
    };
    let (role, inline, attached, ours) = tokio::join!(
        iam.get_role().role_name(name).send(),
        iam.list_role_policies().role_name(name).send(),
        iam.list_attached_role_policies().role_name(name).send(),
        ours,
    );
    let role = match role {
        Ok(out) => match out.role {
            Some(r) => r,
            None => return Ok(None),
        },
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(aws_error(component, format!("read the IAM role {name}"), e)),
    };
    let names = match inline {
        Ok(out) => out.policy_names().to_vec(),
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(aws_error(
                component,
                format!("list the inline policies of the IAM role {name}"),
                e,
            ))
        }
    };
    let mut attached: Vec<String> = match attached {
        Ok(out) => out
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_string))
            .collect(),
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => {
            return Err(aws_error(
                component,
                format!("list the policies attached to the IAM role {name}"),
                e,
            ))
        }
    };
    attached.sort();
    let mut inline = BTreeMap::new();
    if let (Some(policy), Some(ours)) = (policy, ours) {
        match ours {
            Ok(out) => {
                inline.insert(policy.to_string(), out.policy_document);
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(aws_error(
                    component,
                    format!("read the policy {policy} of the IAM role {name}"),
                    e,
                ))
            }
        }
    }
    // Other inline policies are named, not read: any is a problem.
    for other in names.into_iter().filter(|n| Some(n.as_str()) != policy) {
        inline.insert(other, String::new());
    }
    Ok(Some(RoleSeen {
        arn: role.arn,
        trust: role.assume_role_policy_document.unwrap_or_default(),
        inline,
        attached,
        tags: role
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
    }))
}

/// What is wrong with `seen` against `want`, in words; empty when nothing.
pub fn problems(seen: &RoleSeen, want: &Wanted) -> Vec<String> {
    let mut words = Vec::new();
    if !same_policy(&seen.trust, &want.trust) {
        words.push(format!(
            "the trust policy of {} {}",
            want.name,
            differences(&seen.trust, &want.trust)
        ));
    }
    let ours = want.inline.as_ref().map(|(n, _)| *n);
    if let Some((policy, doc)) = &want.inline {
        match seen.inline.get(*policy) {
            None => words.push(format!("{} lacks its policy {policy}", want.name)),
            Some(have) if !same_policy(have, doc) => words.push(format!(
                "the policy {policy} of {} {}",
                want.name,
                differences(have, doc)
            )),
            Some(_) => {}
        }
    }
    for other in seen.inline.keys().filter(|k| Some(k.as_str()) != ours) {
        words.push(format!("{} has another inline policy {other}", want.name));
    }
    for arn in &want.attached {
        if !seen.attached.contains(arn) {
            words.push(format!("{} lacks the attached policy {arn}", want.name));
        }
    }
    for arn in &seen.attached {
        if !want.attached.contains(arn) {
            words.push(format!("{} has another attached policy {arn}", want.name));
        }
    }
    words
}

/// Makes the role as wanted: created when `seen` is None, else repaired.
pub async fn ensure(
    ctx: &Ctx,
    component: &'static str,
    seen: Option<&RoleSeen>,
    want: &Wanted,
) -> Result<(), ComponentError> {
    let iam = ctx.aws.iam();
    let name = &want.name;
    // Each role carries its own `Name`, as every object the provider makes.
    let mut tags = ctx.tags(component);
    tags.insert("Name".to_string(), name.clone());
    let trust = want.trust.to_string();
    let restore_trust = || async {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(&trust)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                aws_error(
                    component,
                    format!("set the trust policy of the IAM role {name}"),
                    e,
                )
            })
    };
    let none = RoleSeen::default();
    let seen = match seen {
        None => {
            match iam
                .create_role()
                .role_name(name)
                .assume_role_policy_document(&trust)
                .description(&want.description)
                .set_tags(Some(iam_tags(component, &tags)?))
                .send()
                .await
            {
                Ok(_) => {}
                // Unique by name: made meanwhile by a concurrent or killed
                // run, or by our own call whose answer was lost.
                Err(e) if e.code() == Some("EntityAlreadyExists") => restore_trust().await?,
                Err(e) => {
                    return Err(aws_error(
                        component,
                        format!("create the IAM role {name}"),
                        e,
                    ))
                }
            }
            &none
        }
        Some(seen) => {
            if !same_policy(&seen.trust, &want.trust) {
                restore_trust().await?;
            }
            let stale: BTreeMap<String, String> = tags
                .into_iter()
                .filter(|(k, v)| seen.tags.get(k) != Some(v))
                .collect();
            if !stale.is_empty() {
                iam.tag_role()
                    .role_name(name)
                    .set_tags(Some(iam_tags(component, &stale)?))
                    .send()
                    .await
                    .map_err(|e| aws_error(component, format!("tag the IAM role {name}"), e))?;
            }
            seen
        }
    };
    let ours = want.inline.as_ref().map(|(n, _)| *n);
    for other in seen.inline.keys().filter(|k| Some(k.as_str()) != ours) {
        delete_inline(ctx, component, name, other).await?;
    }
    for arn in seen.attached.iter().filter(|a| !want.attached.contains(a)) {
        detach(ctx, component, name, arn).await?;
    }
    for arn in want.attached.iter().filter(|a| !seen.attached.contains(a)) {
        iam.attach_role_policy()
            .role_name(name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| aws_error(component, format!("attach {arn} to the IAM role {name}"), e))?;
    }
    if let Some((policy, doc)) = &want.inline {
        let current = seen.inline.get(*policy);
        if !current.is_some_and(|have| same_policy(have, doc)) {
            iam.put_role_policy()
                .role_name(name)
                .policy_name(*policy)
                .policy_document(doc.to_string())
                .send()
                .await
                .map_err(|e| {
                    aws_error(
                        component,
                        format!("put the policy {policy} on the IAM role {name}"),
                        e,
                    )
                })?;
        }
    }
    Ok(())
}

/// Deletes one inline policy of a role; one already gone is fine.
async fn delete_inline(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
    policy: &str,
) -> Result<(), ComponentError> {
    let deleted = ctx
        .aws
        .iam()
        .delete_role_policy()
        .role_name(name)
        .policy_name(policy)
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            component,
            format!("delete the inline policy {policy} of the IAM role {name}"),
            e,
        )),
    }
}

/// Detaches one managed policy from a role; one already detached is fine.
async fn detach(
    ctx: &Ctx,
    component: &'static str,
    name: &str,
    arn: &str,
) -> Result<(), ComponentError> {
    let detached = ctx
        .aws
        .iam()
        .detach_role_policy()
        .role_name(name)
        .policy_arn(arn)
        .send()
        .await;
    match detached {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            component,
            format!("detach {arn} from the IAM role {name}"),
            e,
        )),
    }
}

/// Deletes the role with its inline and attached policies (IAM refuses to
/// delete a role that has any). A role already gone is fine.
pub async fn delete(ctx: &Ctx, component: &'static str, name: &str) -> Result<(), ComponentError> {
    let iam = ctx.aws.iam();
    let Some(seen) = read(ctx, component, name, None).await? else {
        return Ok(());
    };
    for policy in seen.inline.keys() {
        delete_inline(ctx, component, name, policy).await?;
    }
    for arn in &seen.attached {
        detach(ctx, component, name, arn).await?;
    }
    match iam.delete_role().role_name(name).send().await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(aws_error(
            component,
            format!("delete the IAM role {name}"),
            e,
        )),
    }
}

// ---------------------------------------------------------------- comparing

pub fn as_list(v: &Json) -> Vec<Json> {
    match v {
        Json::Array(items) => items.clone(),
        Json::Null => Vec::new(),
        other => vec![other.clone()],
    }
}

/// A statement with every list sorted and every single value a list, so
/// that documents that mean the same compare equal.
fn normal_statement(s: &Json) -> Json {
    let sorted = |v: &Json| {
        let mut items: Vec<String> = as_list(v)
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string())
            })
            .collect();
        items.sort();
        items.dedup();
        json!(items)
    };
    let mut out = serde_json::Map::new();
    for (k, v) in s.as_object().into_iter().flatten() {
        let value = match k.as_str() {
            "Action" | "NotAction" | "Resource" | "NotResource" => sorted(v),
            "Principal" => match v {
                Json::Object(p) => {
                    Json::Object(p.iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
                }
                other => other.clone(),
            },
            "Condition" => match v {
                Json::Object(ops) => Json::Object(
                    ops.iter()
                        .map(|(op, keys)| {
                            let keys = match keys {
                                Json::Object(keys) => Json::Object(
                                    keys.iter().map(|(k, v)| (k.clone(), sorted(v))).collect(),
                                ),
                                other => other.clone(),
                            };
                            (op.clone(), keys)
                        })
                        .collect(),
                ),
                other => other.clone(),
            },
            _ => v.clone(),
        };
        out.insert(k.clone(), value);
    }
    Json::Object(out)
}

/// The statements of a policy document, normalised and sorted.
fn normal(doc: &Json) -> Vec<String> {
    let mut statements: Vec<String> = as_list(&doc["Statement"])
        .iter()
        .map(|s| normal_statement(s).to_string())
        .collect();
    statements.sort();
    statements
}

/// Whether the document (as IAM returns it: URL-encoded JSON) means the
/// same as `want`.
pub fn same_policy(have: &str, want: &Json) -> bool {
    serde_json::from_str::<Json>(&super::cluster::percent_decode(have))
        .is_ok_and(|doc| normal(&doc) == normal(want))
}

/// What a document grants beyond `want`, in words.
pub fn differences(have: &str, want: &Json) -> String {
    let Ok(doc) = serde_json::from_str::<Json>(&super::cluster::percent_decode(have)) else {
        return "is not JSON".to_string();
    };
    let (have, want) = (normal(&doc), normal(want));
    let extra: Vec<&String> = have.iter().filter(|s| !want.contains(s)).collect();
    let missing = want.iter().filter(|s| !have.contains(s)).count();
    let mut words = Vec::new();
    if !extra.is_empty() {
        words.push(format!(
            "has {} statement(s) the provider does not make: {}",
            extra.len(),
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if missing > 0 {
        words.push(format!("lacks {missing} statement(s) the provider makes"));
    }
    words.join(", ")
}
