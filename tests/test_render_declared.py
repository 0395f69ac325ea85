"""The declared communications' section of the comment: bounded, and inert whatever the
pull request's files say."""

from __future__ import annotations

import re

from analysis.declared_review import DeclaredReview
from bot.render.declared import MAX_SECTION, declared_section


def review(diff: str) -> DeclaredReview:
    return DeclaredReview((), (), 0, 0, True, diff, (), ())


def test_a_huge_declaration_diff_is_cut_with_its_fence_closed() -> None:
    diff = "\n".join(f"+  - {{from: {{namespace: ns-{n}}}, to: {{}}}}" for n in range(5000))
    section = declared_section(review(diff), "@alice")
    assert len(section) < MAX_SECTION + 200
    assert "cut short" in section
    assert len(re.findall(r"^`{3,}", section, flags=re.MULTILINE)) % 2 == 0


def test_hostile_diff_text_stays_inside_its_code_block() -> None:
    diff = "+# ```\n+# </details> @everyone <!-- reachdiff -->\n+# ````"
    section = declared_section(review(diff), "@alice")
    fence = "`" * 5  # longer than any run of backticks in the text
    assert f"{fence}diff\n{diff}\n{fence}\n" in section
