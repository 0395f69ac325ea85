"""The JSON text writer: any document reads back equal, records one per line."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.report import json_text

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, derandomize=True)
@given(documents)
def test_json_text_reads_back_as_the_same_document(doc: Any) -> None:
    text = json_text(doc)
    assert text.endswith("\n")
    assert json.loads(text) == doc


def test_records_are_one_per_line_and_long_ones_are_spelled_out() -> None:
    small = [{"src": f"a/Pod/{i}", "allowed": {"TCP": "80"}} for i in range(3)]
    big = {"environment": "prod", "connections": [{"src": "x" * 100, "n": i} for i in range(60)]}
    lines = json_text({"opened": small, "environments": [big]}).splitlines()
    assert [json.loads(line.strip().rstrip(",")) for line in lines[2:5]] == small
    # The environment is over the record-line limit: its connections get a line each.
    assert sum(1 for line in lines if '"n": ' in line) == 60
