//! What a component says about itself, once, in its own file: the block
//! of `idis_environment` it owns (arguments, defaults, checks, which
//! force replacement), the computed attributes it fills, the settings it
//! makes without a knob (its guards), and how to read all of them back
//! from what `find` observed. The environment layer builds the schema,
//! validation, planning and refresh from these descriptions and holds no
//! attribute name of a component's.
//!
//! Values cross between Terraform's dynamic values and the component's
//! typed structs here and in `environment`, once: a component's `Spec` is
//! deserialized from the planned block, and its reading serialized into
//! the state.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{ComponentError, Ctx, Observed};
use crate::protocol::cty::{Path, Type, Value};
use crate::protocol::diag::{Diagnostic, Diagnostics};

/// A value of a configuration that breaks a rule: where (relative to the
/// component's block), the value, and what is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub path: Path,
    pub value: Value,
    pub allowed: String,
}

impl Problem {
    /// A problem with the argument `attr` of the block.
    pub fn at(attr: &str, value: &Value, allowed: impl Into<String>) -> Problem {
        Problem {
            path: Path::root().attr(attr),
            value: value.clone(),
            allowed: allowed.into(),
        }
    }

    /// A problem with element `index` of the list argument `attr`.
    pub fn at_index(
        attr: &str,
        index: usize,
        value: &Value,
        allowed: impl Into<String>,
    ) -> Problem {
        Problem {
            path: Path::root().attr(attr).index(index as i64),
            value: value.clone(),
            allowed: allowed.into(),
        }
    }
}

/// What an argument left out of the configuration plans as.
#[derive(Clone, Copy, Debug)]
pub enum Default {
    Str(&'static str),
    Int(i64),
    Bool(bool),
    Strings(&'static [&'static str]),
    /// Nothing: the argument is optional and stays null (not computed).
    Null,
    /// Computed by the component from the planned block so far and the
    /// prior block (e.g. zones chosen at create and kept afterwards).
    Derived(fn(planned: &Value, prior: &Value) -> Value),
}

/// The rule a known value of an argument must follow; unknown values are
/// skipped (they are checked again once known).
#[derive(Clone, Copy, Debug)]
pub enum Check {
    None,
    /// A whole number within the bounds.
    Range(i64, i64),
    /// A string the function accepts; the text says what is allowed.
    Text(fn(&str) -> bool, &'static str),
    /// Every string of a list the function accepts.
    EachText(fn(&str) -> bool, &'static str),
}

/// One argument of a component's block.
#[derive(Clone, Debug)]
pub struct Setting {
    pub name: &'static str,
    pub ty: Type,
    pub description: String,
    pub default: Default,
    pub check: Check,
    /// Changing it replaces the whole environment.
    pub replaces: bool,
    /// AWS records it, so refresh reads it back. Otherwise (a deletion
    /// window, a final-snapshot choice) it stays as the state has it and
    /// takes its default on import.
    pub recorded: bool,
}

impl Setting {
    pub fn new(name: &'static str, ty: Type, default: Default, description: String) -> Setting {
        Setting {
            name,
            ty,
            description,
            default,
            check: Check::None,
            replaces: false,
            recorded: true,
        }
    }

    pub fn check(mut self, check: Check) -> Setting {
        self.check = check;
        self
    }

    pub fn replacing(mut self) -> Setting {
        self.replaces = true;
        self
    }

    pub fn not_recorded(mut self) -> Setting {
        self.recorded = false;
        self
    }
}

/// One computed attribute of `idis_environment` a component fills from
/// AWS (an id, an endpoint, an ARN).
#[derive(Clone, Debug)]
pub struct Output {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
    /// Read from AWS but made by others (a controller in the cluster): the
    /// refresh reads it; an apply, which changes nothing of it, keeps it as
    /// planned (the last read), so a controller acting meanwhile cannot
    /// make the apply's result differ from its plan.
    pub made_by_others: bool,
}

impl Output {
    pub const fn new(name: &'static str, ty: Type, description: &'static str) -> Output {
        Output {
            name,
            ty,
            description,
            made_by_others: false,
        }
    }

    pub const fn made_by_others(mut self) -> Output {
        self.made_by_others = true;
        self
    }
}

/// When a guard applies: always, or while a bool argument of the block is
/// true, or while an argument is set.
#[derive(Clone, Copy, Debug)]
pub enum When {
    Always,
    On(&'static str),
    Set(&'static str),
    /// While the bool argument is true or the other argument is set.
    OnOrSet(&'static str, &'static str),
}

/// A setting the provider makes in AWS without a knob of the user's: a
/// public access block, a security group's rules, a key's state. The
/// block's `enforced` map holds one entry per guard: `made` while AWS
/// holds what the provider makes, else words that say what is wrong. The
/// plan always wants `made`, so a change made outside Terraform shows in
/// `terraform plan -refresh-only` and `apply` puts it back.
///
/// `key` and `made` are stored in every state: changing either makes
/// every existing environment report drift once, so they change only with
/// a state upgrade.
#[derive(Clone, Copy, Debug)]
pub struct Guard {
    pub key: &'static str,
    pub made: &'static str,
    /// What the provider makes, for the docs.
    pub doc: &'static str,
    pub when: When,
    /// Outputs the repair of this guard may change (planned unknown while
    /// it does not hold).
    pub affects: &'static [&'static str],
}

impl Guard {
    pub const fn new(key: &'static str, made: &'static str, doc: &'static str) -> Guard {
        Guard {
            key,
            made,
            doc,
            when: When::Always,
            affects: &[],
        }
    }

    pub const fn when(mut self, when: When) -> Guard {
        self.when = when;
        self
    }

    pub const fn affects(mut self, outputs: &'static [&'static str]) -> Guard {
        self.affects = outputs;
        self
    }
}

/// The verdicts of a component's guards, as read from AWS: per key,
/// the problems found (none: as the provider made it).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdicts(BTreeMap<&'static str, Vec<String>>);

impl Verdicts {
    pub fn new() -> Verdicts {
        Verdicts::default()
    }

    /// Records that `guard` holds, unless problems are added to it.
    pub fn seen(&mut self, guard: &Guard) -> &mut Vec<String> {
        self.0.entry(guard.key).or_default()
    }

    /// Records one problem of `guard`.
    pub fn problem(&mut self, guard: &Guard, problem: impl Into<String>) {
        self.seen(guard).push(problem.into());
    }

    /// Records `guard` with the problems in `problems` (none: it holds).
    pub fn judge(&mut self, guard: &Guard, problems: impl IntoIterator<Item = String>) {
        self.seen(guard).extend(problems);
    }

    /// The problems of one guard; None when it was not judged.
    pub fn problems(&self, key: &str) -> Option<&[String]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// The `enforced` map: per judged guard, `made` or the problems.
    pub fn to_map(&self, guards: &[Guard]) -> BTreeMap<String, String> {
        guards
            .iter()
            .filter_map(|g| {
                let problems = self.0.get(g.key)?;
                Some((g.key.to_string(), verdict_text(g, problems)))
            })
            .collect()
    }

    /// Every guard that does not hold, with its problems.
    pub fn failing(&self) -> impl Iterator<Item = (&'static str, &[String])> {
        self.0
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(k, p)| (*k, p.as_slice()))
    }

    pub fn is_clean(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }
}

/// `made`, or the problems in the order found, joined.
fn verdict_text(guard: &Guard, problems: &[String]) -> String {
    if problems.is_empty() {
        guard.made.to_string()
    } else {
        problems.join("; ")
    }
}

/// What a component reads back from AWS: its block (every argument, with
/// the quiet rules applied), its outputs, and the verdicts of its guards.
pub struct Reading<S, O> {
    pub settings: S,
    pub outputs: O,
    pub verdicts: Verdicts,
}

/// A component of an environment, described once: everything Terraform
/// sees of it (its block, outputs, guards and how to read them back), and
/// how it is found, made and removed (`find`, `ensure`, `delete`, which
/// hand over to the module's functions of the same names with what they
/// depend on). The environment composes components through this trait
/// alone: adding one is an `impl` and a line in [`crate::components::each`].
pub trait Component: 'static {
    /// The block's name in `idis_environment`, and the component's in
    /// messages (`database`, `audit_storage`).
    const NAME: &'static str;
    /// The block's description.
    const DOC: &'static str;
    /// Whether finding it in a region shows that the environment exists
    /// there (import and the data source look for a regional component).
    const REGIONAL: bool = true;

    /// The block's arguments, once planned: every default filled in. Its
    /// serde field names are the arguments' names.
    type Spec: Serialize
        + DeserializeOwned
        + Clone
        + Debug
        + std::default::Default
        + PartialEq
        + Send
        + Sync;
    /// What `find` reads in AWS.
    type State: Clone + Debug + Send + Sync + 'static;
    /// The computed attributes it fills; serde field names are the
    /// attribute names of [`Component::outputs`].
    type Outputs: Serialize;

    fn settings() -> Vec<Setting>;

    /// Computed attributes; the first is the presence marker, null in the
    /// state while the component does not exist.
    fn outputs() -> Vec<Output>;

    /// Settings the provider makes without a knob.
    fn guards() -> &'static [Guard];

    /// Rules beyond each argument's own [`Check`]: across arguments, or
    /// with the region. `config` is the whole resource (configuration or
    /// planned value); unknown values are skipped.
    fn check(_config: &Value) -> Vec<Problem> {
        Vec::new()
    }

    /// Outputs whose planned value depends on the change (set unknown
    /// where apply will make them anew). `planned` holds the prior
    /// outputs of a present component.
    fn plan_outputs(_prior: &Value, _planned: &mut Value) {}

    /// Refusals of changes that would lose data, and warnings for changes
    /// that disturb running systems (`prior` and `planned` are the whole
    /// resource).
    fn judge(_prior: &Value, _planned: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// What a destroy of the environment means for this component:
    /// warnings, or an error that refuses the destroy at plan time.
    fn on_destroy(_prior: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads the block, the outputs and the guards back from what AWS has.
    /// `stored` is the block as the state holds it (arguments AWS does not
    /// record come from it, and the quiet rules compare with it), `prior`
    /// the whole stored resource.
    fn read(
        state: &Self::State,
        stored: &Self::Spec,
        prior: &Value,
    ) -> Reading<Self::Spec, Self::Outputs>;

    /// Components (by [`Component::NAME`]) whose state `ensure` needs:
    /// built before this one, deleted after it.
    const AFTER: &'static [&'static str] = &[];

    /// Reads what exists of the component; `Ok(None)` when it is absent.
    fn find(ctx: &Ctx) -> impl Future<Output = Result<Option<Self::State>, ComponentError>> + Send;

    /// What a reading writes when `find` found nothing: None (the
    /// component is absent, its outputs null), or a state whose reading
    /// is meaningful (the edge: no web ACL reads as `waf = false`).
    fn absent() -> Option<Self::State> {
        None
    }

    /// Makes AWS match `spec`; `built` holds the components of
    /// [`Component::AFTER`], already built.
    fn ensure(
        ctx: &Ctx,
        spec: &Self::Spec,
        built: &Observed,
    ) -> impl Future<Output = Result<Self::State, ComponentError>> + Send;

    /// Components (by name) after which [`Component::follow_up`] runs.
    const FOLLOW_UP_AFTER: &'static [&'static str] = &[];

    /// Work on this component that has to wait for others (the network
    /// lets the cluster's own security group in once EKS made it): runs
    /// once this component and those of [`Component::FOLLOW_UP_AFTER`]
    /// are built, and returns the component's state anew.
    fn follow_up(
        _ctx: &Ctx,
        _built: &Observed,
    ) -> impl Future<Output = Result<Option<Self::State>, ComponentError>> + Send {
        async { Ok(None) }
    }

    /// Removes the component (or keeps what the spec says to keep);
    /// returns warnings about what was kept or scheduled.
    fn delete(
        ctx: &Ctx,
        spec: &Self::Spec,
    ) -> impl Future<Output = Result<Vec<String>, ComponentError>> + Send;

    /// A reason AWS would stop a destroy half-way (deletion protection),
    /// asked of every component before anything is deleted.
    fn refuse_destroy(ctx: &Ctx) -> impl Future<Output = Option<Diagnostic>> + Send {
        let _ = ctx;
        async { None }
    }
}

/// Something done once per component, for [`crate::components::each`].
pub trait Visit {
    fn visit<C: Component>(&mut self);
}

/// The cty type of a component's block value.
pub fn block_type<C: Component>() -> Type {
    let mut attrs: BTreeMap<String, Type> = C::settings()
        .into_iter()
        .map(|s| (s.name.to_string(), s.ty))
        .collect();
    attrs.insert(ENFORCED.to_string(), Type::map(Type::String));
    Type::Object(attrs)
}

/// The computed attribute of every component block holding its guards.
pub const ENFORCED: &str = "enforced";

/// The `enforced` map the plan wants for a planned block: `made` for
/// every guard that applies. Unknown while a condition is unknown.
pub fn planned_guards(guards: &[Guard], block: &Value) -> Value {
    let mut map = BTreeMap::new();
    for g in guards {
        let applies = match g.when {
            When::Always => Some(true),
            // A null toggle (a state from before it) is off.
            When::On(attr) => match block.get_attr(attr) {
                Value::Unknown => None,
                v => Some(v.as_bool() == Some(true)),
            },
            When::Set(attr) => match block.get_attr(attr) {
                Value::Unknown => None,
                v => Some(!v.is_null()),
            },
            // A null toggle (a state from before it) is off.
            When::OnOrSet(on, set) => match (block.get_attr(on), block.get_attr(set)) {
                (Value::Bool(true), _) => Some(true),
                (Value::Unknown, _) | (_, Value::Unknown) => None,
                (_, v) => Some(!v.is_null()),
            },
        };
        match applies {
            None => return Value::Unknown,
            Some(true) => {
                map.insert(g.key.to_string(), g.made.to_string());
            }
            Some(false) => {}
        }
    }
    Value::string_map(map)
}

/// `<prefix>family.size`, as EC2 (`m6i.xlarge`), RDS (`db.r6g.xlarge`)
/// and ElastiCache (`cache.r6g.large`) name their instance types.
pub fn is_instance_type(s: &str, prefix: &str) -> bool {
    let Some(rest) = s.strip_prefix(prefix) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Numbers joined by dots (`"16"`, `"16.4"`, `"1.32"`): the shape of every
/// engine and Kubernetes version. Whether AWS offers it is asked at plan
/// (`components::offers`).
pub fn is_dotted_version(s: &str) -> bool {
    s.len() <= 16
        && s.split('.').count() <= 3
        && s.split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// The major of a version (`"16"` of `"16.4"`).
pub fn major_of(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Version strings compared numerically part by part.
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a) < parse(b)
}

/// "16" is satisfied by any 16.x: keep what the user wrote while AWS runs
/// a version of that major, else AWS's version (drift). A full version
/// ("16.4") pins it: any other version AWS runs shows. The written value
/// stays when AWS does not report a version (moto for ElastiCache).
pub fn version_setting(written: &str, actual: Option<&str>) -> String {
    match actual {
        None => written.to_string(),
        Some(actual) if !written.contains('.') && major_of(actual) == written => {
            written.to_string()
        }
        Some(actual) if written == actual => written.to_string(),
        Some(actual) => actual.to_string(),
    }
}

/// A value as a diagnostic shows it.
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::List(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        Value::Unknown => "(known after apply)".into(),
        other => format!("{other:?}"),
    }
}

/// The cty type of a component's outputs, as top-level attributes.
pub fn outputs_type<C: Component>() -> Type {
    Type::Object(
        C::outputs()
            .into_iter()
            .map(|o| (o.name.to_string(), o.ty))
            .collect(),
    )
}

#[cfg(test)]
pub mod testing {
    //! Checks every component's description passes: one place names a
    //! setting, and everything else agrees with it.

    use std::collections::BTreeSet;

    use super::*;
    use crate::protocol::cty;

    /// The serde field names of a struct, from its default value.
    pub fn field_names<T: Serialize + std::default::Default>() -> BTreeSet<String> {
        match serde_json::to_value(T::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            other => panic!("not a struct: {other:?}"),
        }
    }

    /// The schema's arguments, the typed Spec, the outputs and the
    /// reading of a healthy state all name the same things. (That the
    /// guards a component judges are the ones the plan wants is shown by
    /// the component tests, which read what `ensure` made.)
    pub fn description_is_whole<C: Component>(healthy: &C::State, spec: &C::Spec) {
        let settings: BTreeSet<String> = C::settings().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(
            settings,
            field_names::<C::Spec>(),
            "{}: the block's arguments and the fields of its Spec differ",
            C::NAME
        );
        let unique: BTreeSet<&str> = C::guards().iter().map(|g| g.key).collect();
        assert_eq!(
            unique.len(),
            C::guards().len(),
            "{}: guard keys repeat",
            C::NAME
        );

        let reading = C::read(healthy, spec, &Value::Null);
        // The outputs struct serializes to exactly the declared outputs.
        let outputs = cty::to_value(&reading.outputs, &outputs_type::<C>())
            .unwrap_or_else(|e| panic!("{}: outputs do not fit their schema: {e}", C::NAME));
        let names: BTreeSet<String> = C::outputs().iter().map(|o| o.name.to_string()).collect();
        let Value::Object(attrs) = &outputs else {
            panic!("{}: outputs are not an object", C::NAME)
        };
        assert_eq!(
            attrs.keys().cloned().collect::<BTreeSet<_>>(),
            names,
            "{}: the Outputs struct and outputs() differ",
            C::NAME
        );
        // The settings read back are the spec of the healthy state.
        assert_eq!(
            &reading.settings,
            spec,
            "{}: reading a healthy state back does not give its spec",
            C::NAME
        );
        // Every guard is documented and made of words.
        for g in C::guards() {
            assert!(
                !g.made.is_empty() && !g.doc.is_empty(),
                "{}: guard {}",
                C::NAME,
                g.key
            );
        }
    }
}
