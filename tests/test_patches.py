"""Which lines of a pull request's diff can carry a review comment."""

from __future__ import annotations

from bot.review.patches import PullFiles, diff_lines

PATCH = """@@ -1,4 +1,5 @@
 kind: NetworkPolicy
-  name: old
+  name: new
+  namespace: shop
 spec:

@@ -20,2 +21,3 @@ spec:
   ingress:
+  - {}
   egress: []
\\ No newline at end of file"""


def test_both_sides_of_every_hunk() -> None:
    left, right = diff_lines(PATCH)
    # Line 5 of the head is an empty context line whose leading space GitHub trimmed.
    assert right == {1, 2, 3, 4, 5, 21, 22, 23}
    assert left == {1, 2, 3, 4, 20, 21}


def test_a_new_file_has_only_a_right_side() -> None:
    assert diff_lines("@@ -0,0 +1,2 @@\n+a\n+b") == (frozenset(), frozenset({1, 2}))


def test_pull_files_from_the_api() -> None:
    files = PullFiles.from_api(
        [
            {"filename": "a.yaml", "status": "modified", "patch": PATCH},
            {"filename": "gone.yaml", "status": "removed", "patch": "@@ -1,1 +0,0 @@\n-x"},
            {"filename": "big.yaml", "status": "modified"},  # no patch: too large to show
        ]
    )
    assert files.in_diff("a.yaml", 22) and not files.in_diff("a.yaml", 10)
    assert files.in_diff("a.yaml", 20, "LEFT") and not files.in_diff("a.yaml", 22, "LEFT")
    assert files.in_diff("gone.yaml", 1, "LEFT") and not files.changed("gone.yaml")
    assert files.can_comment("a.yaml", 10, "RIGHT")  # on the file as a whole
    assert files.can_comment("big.yaml", 3, "RIGHT") and not files.in_diff("big.yaml", 3)
    assert not files.can_comment("gone.yaml", 2, "LEFT")
    assert not files.can_comment("other.yaml", 1, "RIGHT")
