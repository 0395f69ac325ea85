"""The ``cilium_agent`` section of ``.github/reachdiff.yml``: how the cluster's Cilium agents
are configured (``analysis.ciliumagent``; docs/bot.md, docs/semantics.md).

Keys are the agent's own option names, as in the ``cilium-config`` ConfigMap, so that they
can be copied from the cluster; each takes the values the agent accepts, and a typo is an
error naming the key and line (never a silent fall back to the default).
"""

from __future__ import annotations

import yaml

from analysis.ciliumagent import ALLOW_LOCALHOST, CIDR_MATCH_MODES, ENABLE_POLICY, CiliumAgent
from bot.review.yamlnodes import NodeError, NodeReader, line, shown

SECTION = "cilium_agent"
# setting -> (CiliumAgent field, accepted values)
OPTIONS = {
    "enable-policy": ("enable_policy", ENABLE_POLICY),
    "policy-cidr-match-mode": ("policy_cidr_match_mode", CIDR_MATCH_MODES),
    "allow-localhost": ("allow_localhost", ALLOW_LOCALHOST),
}
# Values the agent accepts that reachdiff does not model: refused with why, never analysed
# as something else.
NOT_MODELLED = {
    ("policy-cidr-match-mode", "nodes"): "CIDRs selecting the cluster's nodes by their "
    "addresses is not modelled (the manifests do not hold node addresses); remove the option "
    "to review this cluster as if CIDRs selected only what is outside it",
}


def read_cilium_agent(reader: NodeReader, node: yaml.Node) -> CiliumAgent:
    """The section's options; those it leaves out keep upstream's defaults."""
    fields = reader.mapping(node, SECTION, tuple(OPTIONS))
    values: dict[str, str] = {}
    for key, value_node in fields.items():
        attribute, accepted = OPTIONS[key]
        value = reader.scalar(value_node)
        if value is None and "" in accepted:
            value = ""  # `policy-cidr-match-mode:` left empty, as the ConfigMap's ""
        if not isinstance(value, str) or value not in accepted:
            choices = ", ".join(a or repr(a) for a in accepted)
            raise NodeError(
                f"{SECTION}.{key}",
                f"must be one of {choices} (the Cilium agent's {key}), got {shown(value)}",
                line(value_node),
            )
        if (key, value) in NOT_MODELLED:
            raise NodeError(f"{SECTION}.{key}", NOT_MODELLED[key, value], line(value_node))
        values[attribute] = value
    return CiliumAgent(**values)
