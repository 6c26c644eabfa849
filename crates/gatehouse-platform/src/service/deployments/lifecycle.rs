//! The deployment state machine, as a pure function: where a deployment stands ([`Phase`]),
//! what happens to it ([`Input`]), and where that takes it ([`transition`]).
//!
//! ```text
//! deploy/restore ──▶ DEPLOYING ──ack ok──▶ DEPLOYED          (desired DEPLOYED)
//!                        │ ack failed / timeout ──▶ FAILED ──late ack ok──▶ DEPLOYED
//! undeploy ──▶ UNDEPLOYING ──ack ok──▶ UNDEPLOYED           (desired UNDEPLOYED)
//!                        │ ack failed / timeout ──▶ FAILED
//! a newer deployment of the same (artifact, gateway) ──▶ the old one is ARCHIVED
//! ```
//!
//! Whether an ack or a timeout belongs to the action in force (its `performedAt`) is decided by
//! the caller and passed in; the store applies a transition only to the row it read.

use gatehouse_core::protocol::{AckAction, AckStatus, DeploymentStatus, DesiredState};

/// Where one deployment stands. `FAILED` is two phases, told apart by the desired state: a
/// failed deploy is still meant to be served, a failed undeploy is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Deploying,
    Deployed,
    DeployFailed,
    Undeploying,
    Undeployed,
    UndeployFailed,
    /// Not the current deployment of its (artifact, gateway): new, or superseded (`ARCHIVED`).
    NotCurrent,
}

/// Something that happens to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A new snapshot is made current and sent to the gateway.
    Deploy,
    /// The current deployment stops being served.
    Undeploy,
    /// An earlier deployment is made current and sent again.
    Restore,
    /// The gateway's acknowledgement; `for_current_action` says whether it carries the
    /// `performedAt` of the action in force (false: stale).
    Ack {
        action: AckAction,
        status: AckStatus,
        for_current_action: bool,
    },
    /// The gateway did not acknowledge in time.
    Timeout,
    /// Another deployment of the same (artifact, gateway) was made current.
    Supersede,
    /// The deployment is deleted.
    Delete,
}

/// What an input does to a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The deployment moves to this phase.
    To(Phase),
    /// Nothing changes (a stale or repeated ack, a timeout of a settled deployment).
    Unchanged,
    /// The deployment is removed.
    Removed,
}

/// An input refused in the deployment's phase. The messages complete "deployment 'ID' ...".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("is {status}; only a deployment that is deployed, deploying or failed to deploy can be undeployed")]
    NotUndeployable { status: DeploymentStatus },
    #[error("is already {status}; nothing to restore")]
    AlreadyDeployed { status: DeploymentStatus },
    #[error("is {status}; undeploy it before deleting it")]
    StillServed { status: DeploymentStatus },
}

/// A stored (status, desired state) pair that no phase has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a current deployment cannot be {status} with desired state {desired}")]
pub struct InconsistentPhase {
    pub status: DeploymentStatus,
    pub desired: DesiredState,
}

impl Phase {
    /// The phase of a current deployment stored as (`status`, `desired`).
    pub fn of_current(
        status: DeploymentStatus,
        desired: DesiredState,
    ) -> Result<Phase, InconsistentPhase> {
        use DeploymentStatus as S;
        use DesiredState as D;
        Ok(match (status, desired) {
            (S::Deploying, D::Deployed) => Phase::Deploying,
            (S::Deployed, D::Deployed) => Phase::Deployed,
            (S::Failed, D::Deployed) => Phase::DeployFailed,
            (S::Undeploying, D::Undeployed) => Phase::Undeploying,
            (S::Undeployed, D::Undeployed) => Phase::Undeployed,
            (S::Failed, D::Undeployed) => Phase::UndeployFailed,
            (status, desired) => return Err(InconsistentPhase { status, desired }),
        })
    }

    /// The status the public API shows.
    pub fn status(self) -> DeploymentStatus {
        match self {
            Phase::Deploying => DeploymentStatus::Deploying,
            Phase::Deployed => DeploymentStatus::Deployed,
            Phase::DeployFailed | Phase::UndeployFailed => DeploymentStatus::Failed,
            Phase::Undeploying => DeploymentStatus::Undeploying,
            Phase::Undeployed => DeploymentStatus::Undeployed,
            Phase::NotCurrent => DeploymentStatus::Archived,
        }
    }

    /// What gateways are told about the artifact; `None` when the deployment is not current.
    pub fn desired(self) -> Option<DesiredState> {
        match self {
            Phase::Deploying | Phase::Deployed | Phase::DeployFailed => {
                Some(DesiredState::Deployed)
            }
            Phase::Undeploying | Phase::Undeployed | Phase::UndeployFailed => {
                Some(DesiredState::Undeployed)
            }
            Phase::NotCurrent => None,
        }
    }
}

/// Where `input` takes a deployment in phase `current`.
pub fn transition(current: Phase, input: Input) -> Result<Transition, TransitionError> {
    use Phase as P;
    let status = current.status();
    Ok(match input {
        Input::Deploy => Transition::To(P::Deploying),
        Input::Undeploy => match current {
            P::Deployed | P::Deploying | P::DeployFailed => Transition::To(P::Undeploying),
            _ => return Err(TransitionError::NotUndeployable { status }),
        },
        Input::Restore => match current {
            P::Deployed | P::Deploying => return Err(TransitionError::AlreadyDeployed { status }),
            _ => Transition::To(P::Deploying),
        },
        Input::Delete => match current.desired() {
            Some(DesiredState::Deployed) => return Err(TransitionError::StillServed { status }),
            _ => Transition::Removed,
        },
        Input::Supersede => match current {
            P::NotCurrent => Transition::Unchanged,
            _ => Transition::To(P::NotCurrent),
        },
        Input::Timeout => match current {
            P::Deploying => Transition::To(P::DeployFailed),
            P::Undeploying => Transition::To(P::UndeployFailed),
            _ => Transition::Unchanged,
        },
        Input::Ack {
            for_current_action: false,
            ..
        } => Transition::Unchanged,
        Input::Ack { action, status, .. } => match (action, status, current) {
            // A success lands from the pending phase and, late, after a failure or timeout.
            (AckAction::Deploy, AckStatus::Success, P::Deploying | P::DeployFailed) => {
                Transition::To(P::Deployed)
            }
            (AckAction::Undeploy, AckStatus::Success, P::Undeploying | P::UndeployFailed) => {
                Transition::To(P::Undeployed)
            }
            // A failure lands whenever the action it reports is in force.
            (
                AckAction::Deploy,
                AckStatus::Failed,
                P::Deploying | P::Deployed | P::DeployFailed,
            ) => Transition::To(P::DeployFailed),
            (
                AckAction::Undeploy,
                AckStatus::Failed,
                P::Undeploying | P::Undeployed | P::UndeployFailed,
            ) => Transition::To(P::UndeployFailed),
            // A repeated success, or an ack of the other action: nothing to do.
            _ => Transition::Unchanged,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase as P;

    const ALL: [Phase; 7] = [
        P::Deploying,
        P::Deployed,
        P::DeployFailed,
        P::Undeploying,
        P::Undeployed,
        P::UndeployFailed,
        P::NotCurrent,
    ];

    fn ack(action: AckAction, status: AckStatus) -> Input {
        Input::Ack {
            action,
            status,
            for_current_action: true,
        }
    }

    fn stale(action: AckAction, status: AckStatus) -> Input {
        Input::Ack {
            action,
            status,
            for_current_action: false,
        }
    }

    #[test]
    fn deploy_always_starts_deploying() {
        for p in ALL {
            assert_eq!(
                transition(p, Input::Deploy),
                Ok(Transition::To(P::Deploying))
            );
        }
    }

    #[test]
    fn undeploy_needs_a_deployment_meant_to_be_served() {
        for p in [P::Deployed, P::Deploying, P::DeployFailed] {
            assert_eq!(
                transition(p, Input::Undeploy),
                Ok(Transition::To(P::Undeploying))
            );
        }
        for p in [
            P::Undeploying,
            P::Undeployed,
            P::UndeployFailed,
            P::NotCurrent,
        ] {
            assert_eq!(
                transition(p, Input::Undeploy),
                Err(TransitionError::NotUndeployable { status: p.status() })
            );
        }
        let e = transition(P::NotCurrent, Input::Undeploy).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is ARCHIVED; only a deployment that is deployed, deploying or failed to deploy can be undeployed"
        );
    }

    #[test]
    fn restore_refuses_what_is_deployed_or_deploying() {
        for p in [P::Deployed, P::Deploying] {
            assert_eq!(
                transition(p, Input::Restore),
                Err(TransitionError::AlreadyDeployed { status: p.status() })
            );
        }
        for p in [
            P::DeployFailed,
            P::Undeploying,
            P::Undeployed,
            P::UndeployFailed,
            P::NotCurrent,
        ] {
            assert_eq!(
                transition(p, Input::Restore),
                Ok(Transition::To(P::Deploying))
            );
        }
    }

    #[test]
    fn acks_of_the_action_in_force() {
        use AckAction::{Deploy, Undeploy};
        use AckStatus::{Failed, Success};
        let rows = [
            // (from, action, status, to)
            (P::Deploying, Deploy, Success, Transition::To(P::Deployed)),
            (
                P::Deploying,
                Deploy,
                Failed,
                Transition::To(P::DeployFailed),
            ),
            (P::Deployed, Deploy, Success, Transition::Unchanged),
            (P::Deployed, Deploy, Failed, Transition::To(P::DeployFailed)),
            (
                P::DeployFailed,
                Deploy,
                Failed,
                Transition::To(P::DeployFailed),
            ),
            (
                P::Undeploying,
                Undeploy,
                Success,
                Transition::To(P::Undeployed),
            ),
            (
                P::Undeploying,
                Undeploy,
                Failed,
                Transition::To(P::UndeployFailed),
            ),
            (P::Undeployed, Undeploy, Success, Transition::Unchanged),
            (
                P::Undeployed,
                Undeploy,
                Failed,
                Transition::To(P::UndeployFailed),
            ),
            (
                P::UndeployFailed,
                Undeploy,
                Success,
                Transition::To(P::Undeployed),
            ),
            (
                P::UndeployFailed,
                Undeploy,
                Failed,
                Transition::To(P::UndeployFailed),
            ),
            // An ack of the other action than the one in force changes nothing.
            (P::Deploying, Undeploy, Success, Transition::Unchanged),
            (P::Undeploying, Deploy, Success, Transition::Unchanged),
            (P::UndeployFailed, Deploy, Success, Transition::Unchanged),
            (P::DeployFailed, Undeploy, Failed, Transition::Unchanged),
            // A deployment that is no longer current is not moved by acks.
            (P::NotCurrent, Deploy, Success, Transition::Unchanged),
            (P::NotCurrent, Undeploy, Failed, Transition::Unchanged),
        ];
        for (from, action, status, to) in rows {
            assert_eq!(
                transition(from, ack(action, status)),
                Ok(to),
                "{from:?} + {action:?} {status:?}"
            );
        }
    }

    #[test]
    fn stale_acks_change_nothing() {
        for p in ALL {
            for action in [AckAction::Deploy, AckAction::Undeploy] {
                for status in [AckStatus::Success, AckStatus::Failed] {
                    assert_eq!(
                        transition(p, stale(action, status)),
                        Ok(Transition::Unchanged)
                    );
                }
            }
        }
    }

    #[test]
    fn a_late_success_after_a_timeout_still_lands() {
        let Ok(Transition::To(failed)) = transition(P::Deploying, Input::Timeout) else {
            panic!("a pending deploy times out");
        };
        assert_eq!(failed, P::DeployFailed);
        assert_eq!(failed.status(), DeploymentStatus::Failed);
        assert_eq!(
            transition(failed, ack(AckAction::Deploy, AckStatus::Success)),
            Ok(Transition::To(P::Deployed))
        );
    }

    #[test]
    fn only_pending_actions_time_out() {
        assert_eq!(
            transition(P::Deploying, Input::Timeout),
            Ok(Transition::To(P::DeployFailed))
        );
        assert_eq!(
            transition(P::Undeploying, Input::Timeout),
            Ok(Transition::To(P::UndeployFailed))
        );
        for p in [
            P::Deployed,
            P::DeployFailed,
            P::Undeployed,
            P::UndeployFailed,
            P::NotCurrent,
        ] {
            assert_eq!(transition(p, Input::Timeout), Ok(Transition::Unchanged));
        }
    }

    #[test]
    fn a_newer_deployment_archives_the_current_one() {
        for p in ALL.into_iter().filter(|p| *p != P::NotCurrent) {
            assert_eq!(
                transition(p, Input::Supersede),
                Ok(Transition::To(P::NotCurrent))
            );
        }
        assert_eq!(
            transition(P::NotCurrent, Input::Supersede),
            Ok(Transition::Unchanged)
        );
        assert_eq!(P::NotCurrent.status(), DeploymentStatus::Archived);
    }

    #[test]
    fn delete_refuses_what_a_gateway_is_meant_to_serve() {
        for p in [P::Deploying, P::Deployed, P::DeployFailed] {
            assert_eq!(
                transition(p, Input::Delete),
                Err(TransitionError::StillServed { status: p.status() })
            );
        }
        for p in [
            P::Undeploying,
            P::Undeployed,
            P::UndeployFailed,
            P::NotCurrent,
        ] {
            assert_eq!(transition(p, Input::Delete), Ok(Transition::Removed));
        }
    }

    #[test]
    fn stored_status_and_desired_state_name_one_phase() {
        for p in ALL.into_iter().filter(|p| *p != P::NotCurrent) {
            let desired = p.desired().unwrap();
            assert_eq!(Phase::of_current(p.status(), desired), Ok(p));
        }
        assert!(Phase::of_current(DeploymentStatus::Deploying, DesiredState::Undeployed).is_err());
        assert!(Phase::of_current(DeploymentStatus::Archived, DesiredState::Deployed).is_err());
    }
}
