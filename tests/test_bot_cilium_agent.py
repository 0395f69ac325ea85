"""End to end: the Cilium agent's options in `.github/reachdiff.yml` (docs/bot.md) reach the
analysis the bot runs, read from the base side; a bad value fails the check naming key and
line; a pull request changing them needs approval like any settings change. Against the fake
GitHub, every request checked against GitHub's OpenAPI description."""

from __future__ import annotations

from tests.botharness import HEAD, Harness, base_tree, db_policy, review, setup_pull

COMPLETE = b"cluster_scope: complete\n"
# web -> db TCP 5432 opens under upstream's defaults
WIDENED = {"policies/db.yaml": db_policy("web")}


def _tree(settings: bytes, **extra: bytes) -> dict[str, bytes]:
    return base_tree(**{".github/reachdiff.yml": settings}, **extra)


async def test_without_the_section_the_widening_needs_approval(harness: Harness) -> None:
    setup_pull(harness.fake, _tree(COMPLETE, **WIDENED), base_files=_tree(COMPLETE))
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"


async def test_enable_policy_always_keeps_web_isolated_so_nothing_opens(
    harness: Harness,
) -> None:
    """Under `always` web's egress is default-deny (no policy allows it): admitting web into
    db opens no path, and the check passes without approval."""
    settings = COMPLETE + b"cilium_agent:\n  enable-policy: always\n"
    setup_pull(harness.fake, _tree(settings, **WIDENED), base_files=_tree(settings))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "success", check["output"]["summary"]


async def test_a_bad_agent_option_fails_the_check_naming_key_and_line(harness: Harness) -> None:
    settings = COMPLETE + b"cilium_agent:\n  enable-policy: sometimes\n"
    setup_pull(harness.fake, _tree(settings, **WIDENED), base_files=_tree(settings))
    await review(harness)
    check = harness.check(HEAD)
    assert check["conclusion"] == "failure"
    shown = str(check["output"]["summary"]) + str(check["output"].get("text") or "")
    assert "cilium\\_agent.enable-policy" in shown and "got 'sometimes'" in shown
    # the comment links the line on the base side
    assert ".github/reachdiff.yml:3`](" in harness.sticky()["body"]


async def test_a_pull_request_setting_the_agent_needs_approval(harness: Harness) -> None:
    """`never` on the head would let every later change through: the change of settings is
    judged under the base's settings and needs approval itself."""
    head = _tree(COMPLETE + b"cilium_agent:\n  enable-policy: never\n")
    setup_pull(harness.fake, head, base_files=_tree(COMPLETE))
    await review(harness)
    assert harness.check(HEAD)["conclusion"] == "failure"
