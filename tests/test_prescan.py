"""Files over the size limit that are mostly kinds reachdiff never reads (a vendored
operator bundle's CustomResourceDefinitions) are read, not refused; the bounds stay."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from analysis.manifests import load_files
from analysis.prescan import set_aside_unread
from analysis.reachability import compute_map
from analysis.report import map_to_json
from bot.cli import main
from bot.inputs.files import FileLimits, FilesError, MiB, read_directory
from bot.inputs.gitrefs import read_ref
from bot.inputs.tarball import read_tarball
from tests.test_gitrefs import commit_all, git, write

FIXTURES = Path(__file__).parent / "fixtures" / "bundles"
SCHEMA_STEP = """\
          field{n}:
            description: |-
              A property of the schema, as long as controller-gen writes them: the
              descriptions of a large operator's types run to megabytes.
            properties:
              name:
                type: string
            type: object
"""


def bundle(size: int = 5 * MiB) -> bytes:
    """The prometheus-operator bundle with its CRD schema grown to ``size`` bytes."""
    template = (FIXTURES / "prometheus-operator-bundle.yaml").read_text()
    steps = []
    total, n = 0, 0
    while total < size:
        step = SCHEMA_STEP.format(n=n)
        steps.append(step)
        total += len(step)
        n += 1
    return template.replace("#SCHEMA#\n", "".join(steps)).encode()


def line_of(data: bytes, needle: bytes) -> int:
    return data[: data.index(needle)].count(b"\n") + 1


def test_an_oversized_bundle_is_read_with_every_line_in_place(tmp_path: Path) -> None:
    data = bundle()
    assert len(data) > 4 * MiB
    (tmp_path / "bundle.yaml").write_bytes(data)
    files = read_directory(tmp_path)
    assert len(files["bundle.yaml"]) < len(data) and files["bundle.yaml"].count(
        b"\n"
    ) == data.count(b"\n")
    tree = load_files(files)
    [workload] = [w for w in tree.workloads if w.name == "prometheus-operator"]
    assert workload.kind == "Deployment"
    [policy] = tree.policies
    # The policy after the blanked schema is cited where it is in the file.
    assert policy.source.line == line_of(data, b"kind: NetworkPolicy") - 1


def test_an_oversized_bundle_reads_the_same_from_a_tarball_and_git(tmp_path: Path) -> None:
    data = bundle()
    expected = read_directory(_tree(tmp_path / "dir", data))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("repo-abc/vendor/bundle.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert read_tarball(buffer.getvalue()) == expected

    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write(repo, "vendor/bundle.yaml", data)
    commit_all(repo, "vendor the operator")
    assert read_ref(repo, "HEAD").files == expected


def _tree(root: Path, data: bytes) -> Path:
    (root / "vendor").mkdir(parents=True)
    (root / "vendor" / "bundle.yaml").write_bytes(data)
    return root


def test_a_change_next_to_an_oversized_bundle_is_reviewed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = bundle()
    base = _tree(tmp_path / "base", data)
    head = _tree(tmp_path / "head", data.replace(b"    - port: http\n", b"    - {}\n"))
    assert main(["diff", str(base), str(head)]) == 1
    out = capsys.readouterr().out
    assert "default/Deployment/prometheus-operator" in out
    assert f"vendor/bundle.yaml:{line_of(data, b'kind: NetworkPolicy') + 9}" in out


def test_what_reachdiff_reads_stays_bounded(tmp_path: Path) -> None:
    limits = FileLimits(max_file_bytes=10_000, max_scanned_file_bytes=200_000)
    # Over the limit in objects reachdiff reads: refused, saying what to do.
    workloads = (FIXTURES / "prometheus-operator-bundle.yaml").read_bytes() * 50
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "w.yaml").write_bytes(workloads)
    with pytest.raises(
        FilesError,
        match=r"w\.yaml: file is \d+ bytes, over the limit of 10000, "
        r"and \d+ bytes of it are objects reachdiff reads .* split the file",
    ):
        read_directory(tmp_path / "a", limits=limits)
    # Too large even to be scanned: refused before it is read.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "crds.yaml").write_bytes(bundle(300_000))
    over = r"crds\.yaml: file is \d+ bytes, over the limit of 10000$"
    with pytest.raises(FilesError, match=over):
        read_directory(tmp_path / "b", limits=limits)
    # Within both bounds: read.
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "crds.yaml").write_bytes(bundle(150_000))
    assert read_directory(tmp_path / "c", limits=limits)


CRD = b"apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"


@pytest.mark.parametrize(
    ("document", "blanked"),
    [
        (CRD + b"metadata:\n  name: x\nspec:\n  group: g\n", True),
        (CRD.replace(b"\n", b"\r\n") + b"metadata:\r\n  name: x\r\nspec:\r\n  a: b\r\n", True),
        (
            b"apiVersion: 'v1'\nkind: \"ConfigMap\"  # big\nmetadata: {name: x}\ndata:\n  k: v\n",
            True,
        ),
        (b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  k: v\n", True),
        # Kinds reachdiff reads, or a group that is not the built-in one: parsed whole.
        (b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  a: b\n", False),
        (b"apiVersion: example.com/v1\nkind: ConfigMap\nmetadata: {}\nspec:\n  a: b\n", False),
        # Whatever the scan is unsure of: parsed whole.
        (b'{"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}}\n', False),
        (CRD + b"metadata: &m\n  name: x\nspec:\n  copy: *m\n", False),
        (CRD + b"kind: CustomResourceDefinition\nspec:\n  a: b\n", False),
        (CRD + b"spec: !!map\n  a: b\n<<: {x: 1}\n", False),
        (CRD + b"spec:\n  a: b\n...\n", False),
        (b"%YAML 1.1\n---\n" + CRD + b"spec:\n  a: b\n", True),  # the directive's own part
    ],
)
def test_only_documents_the_scan_is_sure_of_are_set_aside(document: bytes, blanked: bool) -> None:
    data = b"---\n" + document + b"---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n"
    out, kept = set_aside_unread(data)
    assert out.count(b"\n") == data.count(b"\n")
    assert (out != data) is blanked
    assert kept == len(out) if not blanked else kept < len(out)
    if blanked:
        assert b"spec:" not in out and b"\ndata:" not in out.split(b"kind: Pod")[0]
        assert b"kind: Pod" in out and b"metadata" in out


def test_blanking_never_changes_what_is_read() -> None:
    data = bundle(50_000)
    out, kept = set_aside_unread(data)
    assert kept < len(out) < len(data)
    before = map_to_json(compute_map(load_files({"b.yaml": data})))
    after = map_to_json(compute_map(load_files({"b.yaml": out})))
    assert before == after


def test_argo_cd_style_install_patching_a_crd_still_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Argo CD's kustomize installs take the CRDs as a resource, and users patch them."""
    if shutil.which("kubectl") is None and shutil.which("kustomize") is None:
        pytest.skip("needs kubectl or kustomize")
    root = tmp_path / "repo"
    _tree(root, bundle())
    (root / "vendor" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n- bundle.yaml\n"
        "patches:\n- target:\n    kind: CustomResourceDefinition\n"
        "    name: alertmanagerconfigs.monitoring.coreos.com\n"
        "  patch: |-\n    - op: add\n"
        "      path: /metadata/annotations/argocd.argoproj.io~1sync-options\n"
        "      value: ServerSideApply=true\n"
    )
    assert main(["map", str(root), "--format", "json"]) == 0, capsys.readouterr().err
    doc = capsys.readouterr().out
    assert "vendor:default/Deployment/prometheus-operator" in doc


@pytest.mark.parametrize(
    "hostile",
    [
        b"---\n" * 1_000_000,  # more documents than the parser accepts
        # more top-level fields than any object has
        CRD + b"".join(b"k%d: v\n" % n for n in range(200_000)),
    ],
)
def test_the_scan_stays_bounded_on_hostile_files(hostile: bytes) -> None:
    out, kept = set_aside_unread(hostile)
    assert (out, kept) == (hostile, len(hostile))  # nothing set aside: refused as it is


@pytest.mark.parametrize("brk", [b"\r", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9"])
def test_line_breaks_the_scan_does_not_split_on_leave_the_text_whole(brk: bytes) -> None:
    # To YAML each is a line break: behind it, a repeated `kind:` or a `---` that the scan
    # would have blanked as part of the ConfigMap's data.
    text = (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}"
        + brk
        + b"kind: NetworkPolicy\n"
    )
    assert set_aside_unread(text) == (text, len(text))
    crlf = b"apiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: x}\r\ndata:\r\n  a: b\r\n"
    assert set_aside_unread(crlf)[0] != crlf  # CR LF is split on: set aside as before
