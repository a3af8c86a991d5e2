//! The group's lifecycle hooks, read once, and the one rule that picks this instance's hook
//! for a transition.

use super::{ECS_MANAGED_DRAINING_HOOK, GroupHook, Hook, LifecycleApi};
use crate::config::Config;
use crate::config::tags::{self, TagInputs};
use crate::error::{Error, Result};
use crate::status::state::Transition;

/// The group's hooks, read once at launch (DescribeLifecycleHooks) and kept for the whole life:
/// the terminate hook is known before termination, which then needs no discovery call.
#[derive(Debug, Clone, Default)]
pub struct GroupHooks {
    pub asg: Option<String>,
    pub hooks: Vec<GroupHook>,
}

impl GroupHooks {
    /// Reads the group (the tag, else DescribeAutoScalingInstances) and its hooks.
    pub async fn discover<A: LifecycleApi>(
        api: &A,
        tags: &TagInputs,
        instance_id: &str,
    ) -> Result<GroupHooks> {
        let asg = match &tags.asg {
            Some(a) => Some(a.clone()),
            None => api.instance(instance_id).await?.map(|(asg, _)| asg),
        };
        let hooks = match &asg {
            Some(a) => api.hooks(a).await?,
            None => Vec::new(),
        };
        Ok(GroupHooks { asg, hooks })
    }

    /// Whether ECS managed draining is on for the group: ECS sets DRAINING itself.
    pub fn managed_draining(&self) -> bool {
        self.hooks
            .iter()
            .any(|h| h.name == ECS_MANAGED_DRAINING_HOOK)
    }

    /// The hook for `transition`. One rule, the README's: the trusted config names it, else a
    /// tag, else the group's first hook for the transition. A named hook must exist on the group
    /// for that transition, and ECS's managed-draining hook is never ours, whoever names it.
    pub fn resolve(
        &self,
        config: &Config,
        tags: &TagInputs,
        instance_id: &str,
        transition: Transition,
    ) -> Result<Option<Hook>> {
        let Some(asg) = &self.asg else {
            return Ok(None);
        };
        let (configured, tag) = match transition {
            Transition::Terminate => (&config.lifecycle.terminate_hook, &tags.terminate_hook),
            _ => (&config.lifecycle.launch_hook, &tags.launch_hook),
        };
        let named = configured
            .as_ref()
            .map(|n| (n, "[lifecycle] in the trusted config"))
            .or_else(|| {
                let tag_key = match transition {
                    Transition::Terminate => tags::TERMINATE_HOOK,
                    _ => tags::LAUNCH_HOOK,
                };
                tag.as_ref().map(|n| (n, tag_key))
            });
        let of_transition = |h: &&GroupHook| {
            h.transition == transition.aws_name() && h.name != ECS_MANAGED_DRAINING_HOOK
        };
        let found = match named {
            Some((name, source)) => {
                let hook = self
                    .hooks
                    .iter()
                    .filter(of_transition)
                    .find(|h| &h.name == name);
                if hook.is_none() {
                    return Err(Error::HookNotFound {
                        named_by: source.to_string(),
                        asg: asg.clone(),
                        transition,
                    });
                }
                hook
            }
            None => self.hooks.iter().find(of_transition),
        };
        Ok(found.map(|h| Hook {
            asg: asg.clone(),
            name: h.name.clone(),
            instance_id: instance_id.to_string(),
            heartbeat_timeout: h.heartbeat_timeout,
        }))
    }
}
