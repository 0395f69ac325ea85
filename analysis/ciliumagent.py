"""The Cilium agent's options that change which connections pass (docs/semantics.md).

A manifest tree does not say how the cluster's Cilium agents are configured; the repository
settings do (``cilium_agent`` in ``.github/reachdiff.yml``, docs/bot.md), with the agent's own
option names as in the ``cilium-config`` ConfigMap. A tree carries the options it is
analysed under (``Tree.cilium_agent``; ``None``: the settings name no Cilium agent, and the
upstream defaults apply). Sources: docs.cilium.io, *Policy Enforcement Modes*
(``enable-policy``), *Network Policy* (``policy-cidr-match-mode``), the agent's command
reference (``allow-localhost``); facts only.
"""

from __future__ import annotations

from dataclasses import dataclass

# enable-policy: `default` isolates a pod in a direction once a policy selects it there;
# `always` isolates every pod in both directions, selected or not; `never` enforces no
# policy at all (NetworkPolicies included: Cilium enforces them).
ENABLE_POLICY = ("default", "always", "never")
# policy-cidr-match-mode: empty (CIDRs select only what is outside the cluster) or `nodes`
# (CIDRs select the nodes too, by their addresses).
CIDR_MATCH_MODES = ("", "nodes")
# allow-localhost: `auto` (the agent turns it into `always`), `always` (the node reaches
# every pod whatever its ingress policy says), `policy` (only where a policy allows it).
ALLOW_LOCALHOST = ("auto", "always", "policy")


@dataclass(frozen=True, slots=True)
class CiliumAgent:
    """How the cluster's Cilium agents are configured; the defaults are upstream's."""

    enable_policy: str = "default"
    policy_cidr_match_mode: str = ""
    allow_localhost: str = "auto"

    @property
    def enforces(self) -> bool:
        """False under ``enable-policy: never``: no NetworkPolicy or Cilium policy applies."""
        return self.enable_policy != "never"

    @property
    def isolates_every_pod(self) -> bool:
        """``enable-policy: always``: every pod is default-deny in both directions."""
        return self.enable_policy == "always"

    @property
    def localhost_allowed(self) -> bool:
        """Whether the node reaches its pods whatever their ingress policy says."""
        return self.allow_localhost != "policy"

    def describe(self) -> str:
        """The options in the settings file's words (for notes and errors)."""
        return (
            f"enable-policy: {self.enable_policy}, "
            f"policy-cidr-match-mode: {self.policy_cidr_match_mode or '(empty)'}, "
            f"allow-localhost: {self.allow_localhost}"
        )


DEFAULT_AGENT = CiliumAgent()


def agent_of(configured: CiliumAgent | None) -> CiliumAgent:
    """The options a tree is analysed under (upstream's defaults when none are set)."""
    return configured if configured is not None else DEFAULT_AGENT
