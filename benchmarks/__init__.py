"""Benchmarks for reachdiff at GitOps scale.

``generate`` builds deterministic synthetic manifest trees and pull-request variants of
them; ``run`` times the engine against a YAML parse floor; ``nca`` optionally runs IBM's
network-config-analyzer on the same trees for comparison. Entry point:
``python -m benchmarks --help``.
"""
