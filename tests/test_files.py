"""Reading manifest trees from directories and tarballs, including hostile ones."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest

from bot.inputs.files import FileLimits, FilesError, compile_glob, is_manifest_path, read_directory
from bot.inputs.tarball import read_tarball

# --- globs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.yaml", "a.yaml", True),
        ("**/*.yaml", "x/y/a.yaml", True),
        ("**/*.yaml", "x/y/a.yml", False),
        ("*.yaml", "x/a.yaml", False),
        ("clusters/**", "clusters/prod/apps/web.yaml", True),
        ("clusters/**", "clusters-old/web.yaml", False),
        ("clusters/*/apps/*.yaml", "clusters/prod/apps/web.yaml", True),
        ("clusters/*/apps/*.yaml", "clusters/prod/eu/apps/web.yaml", False),
        ("clusters/**/apps/*.yaml", "clusters/apps/web.yaml", True),
        ("/clusters/*.yaml", "clusters/a.yaml", True),
        ("a?.yaml", "ab.yaml", True),
        ("a?.yaml", "a/.yaml", False),
        # No character classes (the settings refuse "[" and "]", as CODEOWNERS does): what
        # compile_glob is given anyway is taken literally, never as a class.
        ("v[0-9].yaml", "v7.yaml", False),
        ("v[0-9].yaml", "v[0-9].yaml", True),
        ("a[/]b", "a/b", False),
        # A trailing "/" is everything below the directory; a leading "./" the root.
        ("vendor/", "vendor/a/b.yaml", True),
        ("vendor/", "vendor", False),
        ("./apps/*.yaml", "apps/web.yaml", True),
        ("values(1).yaml", "values(1).yaml", True),
        ("values(1).yaml", "values1.yaml", False),
    ],
)
def test_glob(pattern: str, path: str, expected: bool) -> None:
    assert bool(compile_glob(pattern).fullmatch(path)) is expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("apps/web.yaml", True),
        ("apps/web.yml", True),
        ("apps/web.json", True),
        ("overlays/prod/Kustomization", True),
        ("charts/shop/Chart.yaml", True),
        ("charts/shop/templates/deployment.yaml", True),
        ("README.md", False),
        ("charts/shop/templates/_helpers.tpl", True),
        (".github/workflows/ci.yml", False),
        ("apps/.hidden.yaml", False),
    ],
)
def test_manifest_paths(path: str, expected: bool) -> None:
    assert is_manifest_path(path) is expected


# --- directories ---------------------------------------------------------------------------


def write(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def test_directory_reads_manifests_with_posix_paths(tmp_path: Path) -> None:
    write(tmp_path, "namespaces.yaml", "kind: Namespace\n")
    write(tmp_path, "apps/shop/web.yml", "kind: Deployment\n")
    write(tmp_path, "apps/shop/extra.json", "{}")
    write(tmp_path, "overlays/prod/Kustomization", "resources: []\n")
    write(tmp_path, "README.md", "# docs\n")
    write(tmp_path, ".git/config.yaml", "not: a manifest\n")
    write(tmp_path, ".github/workflows/ci.yml", "on: push\n")
    write(tmp_path, "apps/.draft.yaml", "kind: Pod\n")
    files = read_directory(tmp_path)
    assert files == {
        "namespaces.yaml": b"kind: Namespace\n",
        "apps/shop/web.yml": b"kind: Deployment\n",
        "apps/shop/extra.json": b"{}",
        "overlays/prod/Kustomization": b"resources: []\n",
    }


def test_directory_include_patterns(tmp_path: Path) -> None:
    write(tmp_path, "clusters/prod/a.yaml", "a")
    write(tmp_path, "clusters/dev/b.yaml", "b")
    write(tmp_path, "docs/c.yaml", "c")
    files = read_directory(tmp_path, include=("clusters/prod/**",))
    assert files == {"clusters/prod/a.yaml": b"a"}


def test_directory_follows_symlinks_inside_root(tmp_path: Path) -> None:
    write(tmp_path, "base/web.yaml", "web")
    (tmp_path / "prod").mkdir()
    os.symlink("../base/web.yaml", tmp_path / "prod" / "web.yaml")
    os.symlink("base", tmp_path / "linked")
    files = read_directory(tmp_path)
    assert files["prod/web.yaml"] == b"web"
    # The directory is walked once, at its first path in sorted order.
    assert files["base/web.yaml"] == b"web"
    assert "linked/web.yaml" not in files


def test_directory_symlink_loop_ends(tmp_path: Path) -> None:
    write(tmp_path, "a/web.yaml", "web")
    os.symlink("..", tmp_path / "a" / "up")
    os.symlink(".", tmp_path / "a" / "self")
    assert read_directory(tmp_path) == {"a/web.yaml": b"web"}


def test_directory_symlink_cycle_of_links_is_refused(tmp_path: Path) -> None:
    os.symlink("two.yaml", tmp_path / "one.yaml")
    os.symlink("one.yaml", tmp_path / "two.yaml")
    with pytest.raises(FilesError) as info:
        read_directory(tmp_path)
    assert info.value.path == "one.yaml"
    assert "loop" in info.value.message


def test_directory_refuses_file_symlink_outside_root(tmp_path: Path) -> None:
    outside = write(tmp_path, "secret.yaml", "password: hunter2")
    root = tmp_path / "repo"
    write(root, "apps/web.yaml", "web")
    os.symlink(outside, root / "apps" / "evil.yaml")
    with pytest.raises(FilesError) as info:
        read_directory(root)
    assert info.value.path == "apps/evil.yaml"
    assert "outside the tree" in str(info.value)
    assert str(info.value).startswith("apps/evil.yaml: ")


def test_directory_refuses_relative_escape_and_directory_escape(tmp_path: Path) -> None:
    write(tmp_path, "etc/passwd.yaml", "root")
    root = tmp_path / "repo"
    root.mkdir()
    os.symlink("../etc", root / "config")
    with pytest.raises(FilesError) as info:
        read_directory(root)
    assert info.value.path == "config"
    assert "outside the tree" in info.value.message


def test_directory_dangling_symlink(tmp_path: Path) -> None:
    os.symlink("missing.md", tmp_path / "notes.md")  # never read: ignored
    write(tmp_path, "a.yaml", "a")
    assert read_directory(tmp_path) == {"a.yaml": b"a"}
    os.symlink("missing.yaml", tmp_path / "b.yaml")
    with pytest.raises(FilesError, match=r"b\.yaml: symlink points to nothing"):
        read_directory(tmp_path)


def test_directory_dangling_symlink_outside_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    os.symlink("/nonexistent-reachdiff/x", root / "x.md")
    with pytest.raises(FilesError, match="outside the tree"):
        read_directory(root)


def test_directory_root_symlink_is_resolved(tmp_path: Path) -> None:
    write(tmp_path, "real/a.yaml", "a")
    os.symlink("real", tmp_path / "alias")
    assert read_directory(tmp_path / "alias") == {"a.yaml": b"a"}


def test_directory_file_size_limit_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, "ok.yaml", b"x" * 100)
    write(tmp_path, "apps/big.yaml", b"x" * 101)
    with pytest.raises(FilesError) as info:
        read_directory(tmp_path, limits=FileLimits(max_file_bytes=100))
    assert info.value.path == "apps/big.yaml"
    assert "101 bytes" in info.value.message
    assert read_directory(tmp_path, limits=FileLimits(max_file_bytes=101))["apps/big.yaml"]


def test_directory_total_and_count_limits(tmp_path: Path) -> None:
    for i in range(5):
        write(tmp_path, f"f{i}.yaml", b"x" * 10)
    with pytest.raises(FilesError, match=r"f4.yaml: .*more than 40 bytes"):
        read_directory(tmp_path, limits=FileLimits(max_total_bytes=40))
    with pytest.raises(FilesError, match=r"f3.yaml: more than 3 files"):
        read_directory(tmp_path, limits=FileLimits(max_files=3))
    assert len(read_directory(tmp_path, limits=FileLimits(max_files=5, max_total_bytes=50))) == 5


def test_directory_skips_fifos(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    write(tmp_path, "a.yaml", "a")
    assert read_directory(tmp_path) == {"a.yaml": b"a"}


def test_directory_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FilesError, match="cannot read directory"):
        read_directory(tmp_path / "nope")
    write(tmp_path, "file.yaml", "x")
    with pytest.raises(FilesError, match="not a directory"):
        read_directory(tmp_path / "file.yaml")


# --- tarballs ------------------------------------------------------------------------------

TOP = "acme-shop-0123abc"


def tarball(
    entries: list[tuple[str, bytes | None]],
    *,
    compress: str = "gz",
    fmt: int = tarfile.PAX_FORMAT,
    links: dict[str, tuple[bytes, str]] | None = None,
) -> bytes:
    """A tar archive like GitHub's: a pax global header, then entries (None: a directory)."""
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w", format=fmt, pax_headers={"comment": "0123abc" * 5}
    ) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        for name, (linktype, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = linktype
            info.linkname = target
            tar.addfile(info)
    raw = buf.getvalue()
    if compress == "gz":
        return gzip.compress(raw)
    if compress == "bz2":
        return bz2.compress(raw)
    if compress == "xz":
        return lzma.compress(raw)
    return raw


SHOP = [
    (f"{TOP}/", None),
    (f"{TOP}/README.md", b"# shop"),
    (f"{TOP}/namespaces.yaml", b"kind: Namespace"),
    (f"{TOP}/clusters/prod/web.yaml", b"kind: Deployment"),
    (f"{TOP}/clusters/prod/Kustomization", b"resources: []"),
    (f"{TOP}/clusters/dev/web.yml", b"kind: Pod"),
    (f"{TOP}/charts/shop/Chart.yaml", b"name: shop"),
    (f"{TOP}/charts/shop/values-prod.yaml", b"replicas: 3"),
    (f"{TOP}/charts/shop/templates/svc.yaml", b"kind: Service"),
    (f"{TOP}/charts/shop/templates/_helpers.tpl", b"{{ define }}"),
    (f"{TOP}/.github/workflows/ci.yml", b"on: push"),
]


@pytest.mark.parametrize("compress", ["gz", "bz2", "xz", "none"])
def test_tarball_keeps_manifests_and_strips_top_directory(compress: str) -> None:
    files = read_tarball(tarball(SHOP, compress=compress))
    assert files == {
        "namespaces.yaml": b"kind: Namespace",
        "clusters/prod/web.yaml": b"kind: Deployment",
        "clusters/prod/Kustomization": b"resources: []",
        "clusters/dev/web.yml": b"kind: Pod",
        "charts/shop/Chart.yaml": b"name: shop",
        "charts/shop/values-prod.yaml": b"replicas: 3",
        "charts/shop/templates/svc.yaml": b"kind: Service",
        "charts/shop/templates/_helpers.tpl": b"{{ define }}",  # helm needs its helpers
    }


def test_tarball_without_prefix_strip() -> None:
    files = read_tarball(tarball([("a.yaml", b"a"), ("d/b.yaml", b"b")]), prefix_strip=False)
    assert files == {"a.yaml": b"a", "d/b.yaml": b"b"}


def test_tarball_path_globs() -> None:
    data = tarball(SHOP)
    assert set(read_tarball(data, paths=("clusters/**",))) == {
        "clusters/prod/web.yaml",
        "clusters/prod/Kustomization",
        "clusters/dev/web.yml",
    }
    # A pattern naming a directory selects what is below it.
    assert set(read_tarball(data, paths=("clusters/prod",))) == {
        "clusters/prod/web.yaml",
        "clusters/prod/Kustomization",
    }
    assert set(read_tarball(data, paths=("*.yaml", "charts/*/Chart.yaml"))) == {
        "namespaces.yaml",
        "charts/shop/Chart.yaml",
    }
    assert read_tarball(data, paths=()) == {}


def test_tarball_long_paths_in_all_formats() -> None:
    deep = "/".join(["d" * 60] * 5) + "/web.yaml"  # over the 100+155 byte ustar fields
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT):
        files = read_tarball(tarball([(f"{TOP}/{deep}", b"w")], fmt=fmt))
        assert files == {deep: b"w"}
    medium = "/".join(["m" * 60] * 2) + "/web.yaml"  # needs the ustar prefix field
    assert read_tarball(tarball([(f"{TOP}/{medium}", b"m")], fmt=tarfile.USTAR_FORMAT)) == {
        medium: b"m"
    }


def test_tarball_unicode_path() -> None:
    files = read_tarball(tarball([(f"{TOP}/apps/café.yaml", b"c")]))
    assert files == {"apps/café.yaml": b"c"}


@pytest.mark.parametrize(
    "name",
    [f"{TOP}/../../etc/cron.d/x.yaml", f"{TOP}/apps/../../x.md", "/etc/passwd", "../x.yaml"],
)
def test_tarball_refuses_escaping_paths(name: str) -> None:
    with pytest.raises(FilesError) as info:
        read_tarball(tarball([(f"{TOP}/a.yaml", b"a"), (name, b"evil")]))
    assert info.value.path == name
    assert "absolute" in info.value.message or ".." in info.value.message


@pytest.mark.parametrize("linktype", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tarball_refuses_links_that_would_be_read(linktype: bytes) -> None:
    data = tarball(
        [(f"{TOP}/a.yaml", b"a")],
        links={f"{TOP}/apps/web.yaml": (linktype, "/etc/passwd")},
    )
    with pytest.raises(FilesError) as info:
        read_tarball(data)
    assert info.value.path == "apps/web.yaml"
    assert "links are not allowed" in info.value.message
    # Outside the selected paths the link is never materialised, so it is harmless.
    assert read_tarball(data, paths=("a.yaml",)) == {"a.yaml": b"a"}


def test_tarball_ignores_links_with_other_names() -> None:
    data = tarball([(f"{TOP}/a.yaml", b"a")], links={f"{TOP}/docs/latest": (tarfile.SYMTYPE, "v2")})
    assert read_tarball(data) == {"a.yaml": b"a"}


def test_tarball_file_size_limit_before_reading() -> None:
    data = tarball([(f"{TOP}/small.yaml", b"s"), (f"{TOP}/apps/big.yaml", b"x" * 5000)])
    with pytest.raises(FilesError) as info:
        read_tarball(data, limits=FileLimits(max_file_bytes=4096))
    assert info.value.path == "apps/big.yaml"
    assert "5000 bytes" in info.value.message
    # Oversized files that are not manifests are skipped without counting against the limit.
    other = tarball([(f"{TOP}/small.yaml", b"s"), (f"{TOP}/logo.png", b"x" * 5000)])
    assert read_tarball(other, limits=FileLimits(max_file_bytes=4096)) == {"small.yaml": b"s"}


def test_tarball_total_and_count_limits() -> None:
    data = tarball([(f"{TOP}/f{i}.yaml", b"x" * 10) for i in range(4)])
    with pytest.raises(FilesError, match=r"f3\.yaml: .*more than 30 bytes"):
        read_tarball(data, limits=FileLimits(max_total_bytes=30))
    with pytest.raises(FilesError, match=r"f2\.yaml: more than 2 files"):
        read_tarball(data, limits=FileLimits(max_files=2))


def test_tarball_compression_bomb_is_bounded() -> None:
    # 64 MiB of zeros inside one non-manifest entry compresses to ~64 KiB; the stream bound
    # stops the reader long before it has inflated all of it.
    bomb = tarball([(f"{TOP}/a.yaml", b"a"), (f"{TOP}/zeros.bin", bytes(64 * 1024 * 1024))])
    assert len(bomb) < 200_000
    with pytest.raises(FilesError, match="unpacks to more than"):
        read_tarball(bomb, limits=FileLimits(max_archive_bytes=8 * 1024 * 1024))


def test_tarball_does_not_trust_a_huge_declared_size() -> None:
    # A header claiming a terabyte for a kept file is refused from the header alone.
    raw = bytearray(tarball([(f"{TOP}/a.yaml", b"a")], compress="none", fmt=tarfile.USTAR_FORMAT))
    header_at = raw.index(b"a.yaml") - len(TOP) - 1
    header = bytearray(raw[header_at : header_at + 512])
    header[124:136] = b"\x80" + (1 << 40).to_bytes(11, "big")  # base-256, as GNU tar writes
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    raw[header_at : header_at + 512] = header
    with pytest.raises(FilesError, match=r"a.yaml: file is 1099511627776 bytes"):
        read_tarball(bytes(raw))


def test_tarball_huge_pax_header_is_refused() -> None:
    raw = tarball([(f"{TOP}/{'p' * 2_000_000}.yaml", b"a")], compress="none")
    with pytest.raises(FilesError, match="extended header"):
        read_tarball(raw)


def test_tarball_truncated_and_garbage() -> None:
    raw = tarball([(f"{TOP}/a.yaml", b"a" * 2000)], compress="none")
    cut = raw.index(b"a" * 2000) + 1000
    with pytest.raises(FilesError, match="ends in the middle"):
        read_tarball(raw[:cut])
    with pytest.raises(FilesError, match="not a tar archive"):
        read_tarball(b"<html>rate limited</html>" + bytes(600))
    packed = bytearray(gzip.compress(raw, mtime=0))
    packed[20:40] = b"\xff" * 20
    with pytest.raises(FilesError, match="corrupt archive"):
        read_tarball(bytes(packed))
    assert read_tarball(b"") == {}


def test_tarball_refuses_duplicates_and_several_top_directories() -> None:
    with pytest.raises(FilesError, match=r"a\.yaml: appears twice"):
        read_tarball(tarball([(f"{TOP}/a.yaml", b"1"), (f"{TOP}/a.yaml", b"2")]))
    with pytest.raises(FilesError, match="more than one top directory"):
        read_tarball(tarball([(f"{TOP}/a.yaml", b"1"), ("other/b.yaml", b"2")]))


# -- what readers cannot see (bot.trees.unread_in_listing, lfs_pointers) ---------------------


def _blob(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_unread_entries_inside_paths_are_named_with_the_reason() -> None:
    from bot.inputs.unread import TreeEntry, lfs_pointers, unread_in_listing

    np = b"kind: NetworkPolicy\n"
    files = {"k8s/np.yaml": np, "k8s/subst.yaml": b"x: abc123\n", "k8s/crlf.yaml": b"a: 1\r\n"}
    entries = [
        TreeEntry("k8s", "040000", "tree", "0" * 40),
        TreeEntry("k8s/np.yaml", "100644", "blob", _blob(np)),
        TreeEntry("k8s/crlf.yaml", "100644", "blob", _blob(b"a: 1\n")),  # eol=crlf: same file
        TreeEntry("k8s/subst.yaml", "100644", "blob", _blob(b"x: $Format:%h$\n")),
        TreeEntry("k8s/hidden-by-archive.yaml", "100644", "blob", "1" * 40),
        TreeEntry("k8s/vendor", "160000", "commit", "2" * 40),
        TreeEntry("k8s/app.jsonnet", "100644", "blob", "3" * 40),
        TreeEntry("k8s/README.md", "100644", "blob", "4" * 40),
        TreeEntry("k8s/.hidden/x.yaml", "100644", "blob", "5" * 40),
        TreeEntry("docs/vendor", "160000", "commit", "6" * 40),  # outside paths
    ]
    found = {u.path: u.why for u in unread_in_listing(entries, files, ("k8s/**",))}
    assert set(found) == {
        "k8s/subst.yaml",
        "k8s/hidden-by-archive.yaml",
        "k8s/vendor",
        "k8s/app.jsonnet",
    }
    assert (
        "submodule" in found["k8s/vendor"]
        and "export-ignore" in found["k8s/hidden-by-archive.yaml"]
    )
    everywhere = {u.path for u in unread_in_listing(entries, files, None)}
    assert "docs/vendor" in everywhere
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 3\n"
    assert [u.path for u in lfs_pointers({"a.yaml": pointer, "b.yaml": np})] == ["a.yaml"]


def test_ignore_paths_accepts_a_directory_and_what_is_below() -> None:
    from bot.review.settings import parse_repo_settings, path_ignored

    settings = parse_repo_settings('ignore_paths: ["vendor/**", "k8s/big.yaml"]\n')
    assert path_ignored(settings, "vendor")
    assert path_ignored(settings, "vendor/a/b.yaml")
    assert path_ignored(settings, "k8s/big.yaml")
    assert not path_ignored(settings, "k8s/other.yaml")
    assert not path_ignored(settings, "vendored")
