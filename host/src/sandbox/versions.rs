//! One linked rule of any contract version the host speaks, and the two calls every version
//! answers. Each version's specifics stay in its adapter (0.1: [`crate::sandbox::wit`], 0.2:
//! [`crate::sandbox::v0_2`]); the rest of the host sees host types only.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use crate::model::failure::RuleFailure;
use crate::model::target::Target;
use crate::sandbox::batch::Batch;
use crate::sandbox::bindings::{v0_1, v0_2, wit};
use crate::sandbox::limits::Limits;
use crate::sandbox::store::StoreState;
use crate::sandbox::wit::decision_from_wit;

/// A rule's `InstancePre`, typed by the contract version it exports.
pub(crate) enum RulePre {
    V0_1(v0_1::RuleComponentPre<StoreState>),
    V0_2(v0_2::RuleComponentPre<StoreState>),
}

/// One result per event, or one failure for the whole batch.
pub(crate) type Outcomes = Result<Vec<Result<Vec<Target>, RuleFailure>>, RuleFailure>;

impl RulePre {
    /// Types `pre` by `contract`, the version the component exports (already checked to be
    /// one of [`crate::sandbox::SUPPORTED_CONTRACTS`]).
    pub fn new(pre: InstancePre<StoreState>, contract: &str) -> wasmtime::Result<RulePre> {
        if contract.starts_with("0.2.") {
            Ok(RulePre::V0_2(v0_2::RuleComponentPre::new(pre)?))
        } else {
            Ok(RulePre::V0_1(v0_1::RuleComponentPre::new(pre)?))
        }
    }

    /// A fresh instance's `describe()`, as the 0.1 record.
    pub fn describe(&self, store: &mut Store<StoreState>) -> wasmtime::Result<wit::RuleInfo> {
        match self {
            RulePre::V0_1(pre) => pre
                .instantiate(&mut *store)?
                .tagbust_rules_rule()
                .call_describe(store),
            RulePre::V0_2(pre) => pre
                .instantiate(&mut *store)?
                .tagbust_rules_rule()
                .call_describe(store)
                .map(crate::sandbox::v0_2::info_into_v0_1),
        }
    }

    /// Creates a fresh instance and drops it.
    pub fn instantiate(&self, store: &mut Store<StoreState>) -> wasmtime::Result<()> {
        match self {
            RulePre::V0_1(pre) => pre.instantiate(store).map(drop),
            RulePre::V0_2(pre) => pre.instantiate(store).map(drop),
        }
    }

    /// A fresh instance's `evaluate` over `batch`, with the per-event caps of `limits`
    /// applied. `Err` is a trap or a host-side fault, for [`crate::sandbox::classify`].
    pub fn evaluate(
        &self,
        store: &mut Store<StoreState>,
        batch: &Batch,
        limits: &Limits,
    ) -> wasmtime::Result<Outcomes> {
        let (max_targets, max_bytes) = (limits.max_targets, limits.max_target_bytes);
        match self {
            RulePre::V0_1(pre) => {
                let decisions = pre
                    .instantiate(&mut *store)?
                    .tagbust_rules_rule()
                    .call_evaluate(store, batch.wit_events())?;
                if decisions.len() != batch.len() {
                    return Ok(Err(RuleFailure::InvalidOutput {
                        detail: format!(
                            "returned {} decisions for {} events",
                            decisions.len(),
                            batch.len()
                        ),
                    }));
                }
                Ok(Ok(decisions
                    .into_iter()
                    .map(|d| decision_from_wit(d, max_targets, max_bytes))
                    .collect()))
            }
            RulePre::V0_2(pre) => {
                let results = pre
                    .instantiate(&mut *store)?
                    .tagbust_rules_rule()
                    .call_evaluate(store, batch.packed())?;
                Ok(crate::sandbox::v0_2::decode_results(
                    &results,
                    batch.len(),
                    max_targets,
                    max_bytes,
                ))
            }
        }
    }
}
