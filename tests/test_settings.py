from __future__ import annotations

import pytest

from bot.review.settings import (
    MAX_SETTINGS_BYTES,
    SETTINGS_PATH,
    RepoSettings,
    SettingsError,
    describe_approvers,
    parse_repo_settings,
)

FULL = """\
# every key
paths: ["clusters/**", "apps/*/deploy/*.yaml", "./base/"]
approvers:
  users: [Alice, "@bob"]
  teams: ["@Acme/net-sec", acme/platform_team]
required_approvals: 2
new_workloads_widen: false
ignore_namespaces: [sandbox, "dev-*"]
max_line_comments: 0
diagram: no
"""


def test_no_file_gives_defaults() -> None:
    settings = parse_repo_settings(None)
    assert settings == RepoSettings()
    assert settings.required_approvals == 1
    assert settings.new_workloads_widen is True
    assert not settings.restricts_approvers


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n", b""])
def test_empty_file_gives_defaults(text: str | bytes) -> None:
    assert parse_repo_settings(text) == RepoSettings()


def test_every_key() -> None:
    settings = parse_repo_settings(FULL)
    assert settings.paths == ("clusters/**", "apps/*/deploy/*.yaml", "base/")
    assert settings.approver_users == frozenset({"alice", "bob"})
    assert settings.approver_teams == ("acme/net-sec", "acme/platform_team")
    assert settings.required_approvals == 2
    assert settings.new_workloads_widen is False
    assert settings.ignore_namespaces == ("sandbox", "dev-*")
    assert settings.max_line_comments == 0
    assert settings.diagram is False
    assert settings.restricts_approvers


def test_bytes_are_utf8() -> None:
    assert parse_repo_settings(FULL.encode()) == parse_repo_settings(FULL)


def test_logins_compare_case_insensitively() -> None:
    settings = parse_repo_settings("approvers:\n  users: [Alice]\n")
    assert settings.is_approver_user("ALICE")
    assert settings.is_approver_user("alice")
    assert not settings.is_approver_user("alicia")


def test_teams_alone_restrict_approvers() -> None:
    settings = parse_repo_settings("approvers:\n  teams: [acme/netsec]\n")
    assert settings.restricts_approvers
    assert settings.approver_users == frozenset()


def _error(text: str | bytes) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        parse_repo_settings(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "key", "line", "fragment"),
    [
        ("paths: [a]\nreviewers: [x]\n", "reviewers", 2, "unknown key"),
        ("approvers:\n  user: [x]\n", "approvers.user", 2, "unknown key"),
        ("required_approvals: 0\n", "required_approvals", 1, "between 1 and"),
        ("required_approvals: -3\n", "required_approvals", 1, "between 1 and"),
        ("required_approvals: '2'\n", "required_approvals", 1, "whole number"),
        ("required_approvals: true\n", "required_approvals", 1, "whole number"),
        ("required_approvals: 1.5\n", "required_approvals", 1, "whole number"),
        ("new_workloads_widen: 'yes please'\n", "new_workloads_widen", 1, "true or false"),
        ("new_workloads_widen: 1\n", "new_workloads_widen", 1, "true or false"),
        ("paths: clusters/**\n", "paths", 1, "must be a list"),
        ("paths: [1]\n", "paths", 1, "strings"),
        ("paths: ['/abs/**']\n", "paths", 1, "relative"),
        ("paths: ['a/../b']\n", "paths", 1, "relative"),
        ("paths: ['a/b**']\n", "paths", 1, "whole path segment"),
        ("paths: ['']\n", "paths", 1, "not a file glob"),
        ("paths: ['apps/v[0-9]/*.yaml']\n", "paths", 1, "character classes"),
        ("ignore_paths: ['vendor/[!x]*']\n", "ignore_paths", 1, "character classes"),
        ("ignore_paths: ['!vendor/**']\n", "ignore_paths", 1, "negation"),
        ("paths: ['apps\\\\*.yaml']\n", "paths", 1, "escapes"),
        ("approvers: [alice]\n", "approvers", 1, "mapping"),
        ("approvers:\n  teams: [netsec]\n", "approvers.teams", 2, "org/team-slug"),
        ("approvers:\n  teams: [acme/]\n", "approvers.teams", 2, "org/team-slug"),
        ("approvers:\n  teams: ['acme/net sec']\n", "approvers.teams", 2, "org/team-slug"),
        ("approvers:\n  teams: ['-acme/x']\n", "approvers.teams", 2, "org/team-slug"),
        ("approvers:\n  teams: ['acme/x/y']\n", "approvers.teams", 2, "org/team-slug"),
        ("approvers:\n  users: ['al ice']\n", "approvers.users", 2, "not a GitHub login"),
        ("approvers:\n  users: ['a--b']\n", "approvers.users", 2, "not a GitHub login"),
        ("approvers:\n  users:\n    - ok\n    - 12\n", "approvers.users", 4, "quote it"),
        ("ignore_namespaces: [Prod]\n", "ignore_namespaces", 1, "namespace name"),
        ("ignore_namespaces: ['-x']\n", "ignore_namespaces", 1, "namespace name"),
        ("max_line_comments: 1000\n", "max_line_comments", 1, "between 0 and"),
        ("diagram: maybe\n", "diagram", 1, "true or false"),
        ("paths: [a]\npaths: [b]\n", "paths", 2, "twice"),
        ("- paths\n", "", 1, "mapping"),
        ("just a string\n", "", 1, "mapping"),
        # the entry of a selector list that is wrong, not the list's first line
        ("entry_points:\n  - namespace: edge\n  - {namespaces: x}\n", "entry_points", 3, "unknown"),
        (
            "crown_jewels:\n  - namespace: db\n  - podSelector:\n      matchLabels: {a: 1}\n",
            "crown_jewels",
            4,
            "quote the value",
        ),
        ("entry_points: 3\n", "entry_points", 1, "list of selectors"),
        ("entry_points: [{[a]: b}]\n", "entry_points", 1, "keys must be scalars"),
        # a number Python will not convert, on its own line
        ("paths: [a]\nrequired_approvals: " + "1" * 5000 + "\n", "", 2, "digits"),
    ],
)
def test_invalid_settings_name_the_key_and_line(
    text: str, key: str, line: int, fragment: str
) -> None:
    err = _error(text)
    assert err.key == key
    assert err.line == line
    assert fragment in err.message
    assert str(err).startswith(f"{SETTINGS_PATH}:{line}: ")
    if key:
        assert f": {key}: " in str(err)


def test_a_byte_that_is_not_utf8_is_named_with_its_line() -> None:
    err = _error(b"paths: [a]\n# caf\xe9\n")
    assert (err.line, err.message) == (2, "the file is not UTF-8 (byte 16)")


def test_selector_lists_read_merge_keys_and_aliases_as_the_loader_does() -> None:
    settings = parse_repo_settings(
        "entry_points: [&edge {namespace: edge}, *edge, {<<: *edge, podSelector: {}}]\n"
    )
    assert [s.namespace for s in settings.entry_points] == ["edge", "edge", "edge"]
    assert settings.entry_points[2].pod_selector is not None


def test_required_approvals_beyond_the_listed_users_can_never_pass() -> None:
    err = _error("approvers:\n  users: [alice, bob]\nrequired_approvals: 3\n")
    assert err.key == "required_approvals"
    assert err.line == 3
    assert "2 users" in err.message
    # With a team, more people may approve than are listed: no error.
    settings = parse_repo_settings(
        "approvers:\n  users: [alice]\n  teams: [acme/netsec]\nrequired_approvals: 3\n"
    )
    assert settings.required_approvals == 3


def test_yaml_syntax_error_names_the_line() -> None:
    err = _error("paths: [a\nrequired_approvals: 2\n: :\n")
    assert err.key == ""
    assert err.line is not None and err.line >= 2
    assert "invalid YAML" in str(err)
    assert str(err).startswith(f"{SETTINGS_PATH}:{err.line}: invalid YAML")


def test_several_documents_are_an_error() -> None:
    err = _error("paths: [a]\n---\npaths: [b]\n")
    assert "invalid YAML" in err.message
    assert err.line == 2


def test_non_utf8_is_an_error() -> None:
    assert "UTF-8" in _error(b"paths: [\xff]\n").message


def test_size_is_bounded() -> None:
    err = _error("# " + "x" * MAX_SETTINGS_BYTES + "\n")
    assert "larger than" in err.message


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    err = _error("paths:\n  " + "[" * 30000 + "]" * 30000 + "\n")
    assert "nested too deeply" in err.message
    assert err.line == 2


def test_huge_integer_is_an_error_not_a_crash() -> None:
    err = _error("required_approvals: " + "9" * 5000 + "\n")
    assert err.key in ("", "required_approvals")


def test_aliases_are_checked_like_the_values_they_stand_for() -> None:
    settings = parse_repo_settings("paths: &p [sandbox]\nignore_namespaces: *p\n")
    assert settings.paths == settings.ignore_namespaces == ("sandbox",)
    err = _error("paths: &p [Sandbox/**]\nignore_namespaces: *p\n")
    assert err.key == "ignore_namespaces"


def test_merge_keys_are_unknown_keys() -> None:
    err = _error("approvers:\n  <<: {users: [a]}\n")
    assert err.key == "approvers.<<"


def test_namespace_globs() -> None:
    settings = parse_repo_settings("ignore_namespaces: [sandbox, 'dev-*', '*-tmp']\n")
    assert settings.namespace_ignored("sandbox")
    assert settings.namespace_ignored("dev-alice")
    assert settings.namespace_ignored("x-tmp")
    assert not settings.namespace_ignored("sandbox2")
    assert not settings.namespace_ignored("prod")


def test_describe_approvers() -> None:
    both = parse_repo_settings("approvers:\n  users: [Bob, alice]\n  teams: [acme/netsec]\n")
    assert describe_approvers(both, present=True) == "@alice, @bob or a member of @acme/netsec"
    one = parse_repo_settings("approvers:\n  users: [alice]\n")
    assert describe_approvers(one, present=True) == "@alice"
    assert describe_approvers(RepoSettings(), present=False) == (
        "anyone with write access (no .github/reachdiff.yml)"
    )
    assert "no approvers" in describe_approvers(RepoSettings(), present=True)
