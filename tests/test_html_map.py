"""The HTML map in a real browser: Debian's chromium driven by Playwright.

Playwright's own browser download is not used (nor reachable in CI): the test launches the
system's chromium (``REACHDIFF_CHROMIUM``, else ``chromium`` on PATH). Without a browser
or Playwright the tests skip, except under CI (``CI=true``), where ``.ci/run`` installs
both and a skip would hide a page that no longer works: there they fail.

``REACHDIFF_SCREENSHOTS=1`` also writes the screenshots of the example's pages that the
README and docs/ show (``docs/images/map.png``, ``docs/images/diff.png``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parent.parent
SHOP = Path("examples") / "shop"  # relative: the pages' titles name it (run from ROOT)
SETTINGS = str(SHOP / "reachdiff.yml")
IMAGES = ROOT / "docs" / "images"
DB = "payments/StatefulSet/payments-db"
OPENED_RGB, CLOSED_RGB = "rgb(26, 127, 55)", "rgb(207, 34, 46)"


def _browser_or_skip() -> tuple[Any, str]:
    under_ci = os.environ.get("CI", "").lower() == "true"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if under_ci:
            pytest.fail("playwright is not installed (pip install '.[test]')")
        pytest.skip("playwright is not installed")
    executable = os.environ.get("REACHDIFF_CHROMIUM") or shutil.which("chromium")
    if not executable:
        if under_ci:
            pytest.fail("no chromium: .ci/run installs Debian's (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium, or REACHDIFF_CHROMIUM)")
    return sync_playwright, executable


@pytest.fixture(autouse=True)
def _from_the_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright, executable = _browser_or_skip()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    out, _ = capsys.readouterr()
    return out


class Page:
    """A page of the map, with every console message and page error it produced."""

    def __init__(self, browser: Any, html: str, tmp_path: Path, name: str) -> None:
        path = tmp_path / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.on(
            "console",
            lambda m: (
                self.problems.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_selector("body[data-ready='1']")

    def stat(self, name: str) -> int:
        return int(self.page.get_attribute("#stats", f"data-{name}"))

    def lines(self, selector: str = "line.edge") -> list[dict[str, str]]:
        result: list[dict[str, str]] = self.page.eval_on_selector_all(
            selector, "els => els.map(e => ({...e.dataset, stroke: getComputedStyle(e).stroke}))"
        )
        return result


@pytest.fixture
def shop_map(
    browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Iterator[tuple[Page, dict[str, Any]]]:
    html = _cli(capsys, "map", str(SHOP / "base"), "--format", "html", "--settings", SETTINGS)
    doc = json.loads(_cli(capsys, "map", str(SHOP / "base"), "--format", "json"))
    page = Page(browser, html, tmp_path, "map")
    yield page, doc
    page.page.close()


def test_map_page_matches_the_json(shop_map: tuple[Page, dict[str, Any]]) -> None:
    page, doc = shop_map
    assert page.stat("nodes") == len(doc["endpoints"])
    assert page.stat("edges") == len(doc["connections"])
    page.page.click("#expand-all")
    ids = page.page.eval_on_selector_all(".node", "els => els.map(e => e.dataset.id)")
    assert sorted(ids) == sorted(e["id"] for e in doc["endpoints"])
    # Every line joins two endpoints the JSON connects (loopback pairs are not drawn).
    pairs = {(c["src"], c["dst"]) for c in doc["connections"]}
    drawn = {(x["src"], x["dst"]) for x in page.lines()}
    assert drawn == {(s, d) for s, d in pairs if s != d}
    assert page.problems == [] and all(u.startswith("file:") for u in page.requests)


def test_filters_by_namespace_port_and_search(shop_map: tuple[Page, dict[str, Any]]) -> None:
    page, doc = shop_map
    page.page.select_option("#ns-filter", label="payments")
    shown = set(page.page.eval_on_selector_all(".group", "els => els.map(e => e.dataset.group)"))
    ns = {e["id"]: e.get("namespace") or "external ranges" for e in doc["endpoints"]}
    linked = {ns[c["dst"]] for c in doc["connections"] if ns[c["src"]] == "payments"} | {
        ns[c["src"]] for c in doc["connections"] if ns[c["dst"]] == "payments"
    }
    assert shown == linked | {"payments"}
    page.page.select_option("#ns-filter", label="all")
    page.page.fill("#port-filter", "TCP 5432")
    lines = page.lines()
    assert lines and all("5432" in x["ports"] or " all" in x["ports"] for x in lines)
    wanted = {
        (c["src"], c["dst"])
        for c in doc["connections"]
        if c["src"] != c["dst"] and _allows(c["allowed"], "TCP", 5432)
    }
    assert {(x["src"], x["dst"]) for x in lines} == wanted
    page.page.fill("#port-filter", "")
    page.page.fill("#search", "payments-d")
    assert page.page.eval_on_selector_all(".node.match", "els => els.map(e => e.dataset.id)") == [
        DB
    ]
    assert page.problems == []


def _allows(allowed: dict[str, str], protocol: str, port: int) -> bool:
    spec = allowed.get(protocol)
    if spec is None:
        return False
    if spec == "all":
        return True
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if int(first) <= port <= int(last or first):
            return True
    return False


def test_clicking_a_node_lists_its_paths_and_exposure(
    shop_map: tuple[Page, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    page, doc = shop_map
    page.page.click("#expand-all")
    page.page.click(f".node[data-id='{DB}'] circle")
    assert page.page.inner_text("#details h2") == DB
    inbound = page.page.eval_on_selector_all("#inbound > li", "els => els.map(e => e.innerText)")
    sources = [c["src"] for c in doc["connections"] if c["dst"] == DB and c["src"] != DB]
    assert len(inbound) == len(sources)
    assert all(row.count("policies/") == 2 for row in inbound)  # each side's rule, file:line
    api = next(row for row in inbound if row.startswith("payments/Deployment/payments-api"))
    assert (
        "ingress: policies/payments/payments-db.yaml:14 payments/NetworkPolicy/payments-db" in api
    )
    exposure = json.loads(_cli(capsys, "exposure", str(SHOP / "base"), "--format", "json"))
    mine = next(w for w in exposure["workloads"] if w["id"] == DB)
    path = page.lines("line.edge.path")
    assert [(x["src"], x["dst"]) for x in path] == [
        (h["src"], h["dst"]) for h in mine["entry_path"]
    ]
    assert all(x["stroke"] == "rgb(251, 133, 0)" for x in path)
    if os.environ.get("REACHDIFF_SCREENSHOTS") == "1":
        IMAGES.mkdir(parents=True, exist_ok=True)
        page.page.screenshot(path=str(IMAGES / "map.png"))
    assert page.problems == []


def test_diff_page_colours_opened_and_closed(
    browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    args = (str(SHOP / "base"), str(SHOP / "head"), "--settings", SETTINGS)
    html = _cli(capsys, "diff", *args, "--format", "html")
    doc = json.loads(_cli(capsys, "diff", *args, "--format", "json"))
    page = Page(browser, html, tmp_path, "diff")
    assert page.stat("opened") == len(doc["opened"]) and page.stat("closed") == len(doc["closed"])
    page.page.click("#expand-all")
    lines = page.lines()
    opened = {(x["src"], x["dst"]) for x in lines if "opened" in x.get("status", "")}
    assert (
        {(x["src"], x["dst"]) for x in lines if x["stroke"] == OPENED_RGB}
        == {(c["src"], c["dst"]) for c in doc["opened"]}
        == opened
    )
    assert {(x["src"], x["dst"]) for x in lines if x["stroke"] == CLOSED_RGB} == {
        (c["src"], c["dst"]) for c in doc["closed"]
    }
    page.page.click(f".node[data-id='{DB}'] circle")
    assert "before: 4 hops" in page.page.inner_text("#exposure")
    if os.environ.get("REACHDIFF_SCREENSHOTS") == "1":
        page.page.screenshot(path=str(IMAGES / "diff.png"))
    assert page.problems == [] and all(u.startswith("file:") for u in page.requests)
    page.page.close()


def test_diff_page_with_flows_shows_what_each_path_carried(
    browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    flows = str(SHOP / "flows" / "hubble.jsonl")
    args = (str(SHOP / "base"), str(SHOP / "head"), "--settings", SETTINGS, "--flows", flows)
    html = _cli(capsys, "diff", *args, "--format", "html")
    doc = json.loads(_cli(capsys, "diff", *args, "--format", "json"))
    (broken,) = doc["breaks"]
    page = Page(browser, html, tmp_path, "diff-flows")
    assert page.stat("broken-flows") == broken["forwarded"] == 29
    assert page.stat("breaks") == 1
    assert "would break 29 observed flows on 1 closed path" in page.page.inner_text("#stats")
    page.page.click("#expand-all")
    page.page.click(f".node[data-id='{broken['dst']}'] circle")
    rows = page.page.eval_on_selector_all("#inbound > li", "els => els.map(e => e.innerText)")
    row = next(r for r in rows if r.startswith(f"closed {broken['src']}"))
    assert f"breaks {broken['count']} observed flows, 29 forwarded" in row
    assert page.problems == []
    page.page.close()


PER_PORT_TREE = {
    "apps.yaml": """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec: {containers: [{name: c, image: x}]}
---
apiVersion: v1
kind: Pod
metadata: {name: db, namespace: shop, labels: {app: db}}
spec: {containers: [{name: c, image: x, ports: [{name: pg, containerPort: 5432}]}]}
""",
    "policies.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db, namespace: shop}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: pg}]
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 9000}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 5432}, {port: 8000, endPort: 9100}]
  - to: [{podSelector: {matchLabels: {app: db}}}]
    ports: [{port: 7000}]
""",
}


def test_map_page_cites_a_rule_only_on_the_ports_it_opens_there(
    browser: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """web -> db is allowed on TCP 5432 and 9000 (the egress range meets the ingress
    rules there): each rule is cited with its part of that, and web's egress rule to
    TCP 7000, which db does not admit, is not a cause of the path at all."""
    root = tmp_path / "tree"
    root.mkdir()
    for name, text in PER_PORT_TREE.items():
        (root / name).write_text(text)
    html = _cli(capsys, "map", str(root), "--format", "html", "--cluster-scope", "complete")
    page = Page(browser, html, tmp_path, "per-port")
    page.page.click("#expand-all")
    page.page.click(".node[data-id='shop/Pod/db'] circle")
    (row,) = page.page.eval_on_selector_all("#inbound > li", "els => els.map(e => e.innerText)")
    assert row.startswith("shop/Pod/web: TCP 5432,9000")
    causes = row.split("\n")[1:]
    assert causes == [
        "egress: policies.yaml:19 shop/NetworkPolicy/web egress[0] (TCP 5432,9000)",
        "ingress: policies.yaml:7 shop/NetworkPolicy/db ingress[0] (TCP 5432)",
        "ingress: policies.yaml:9 shop/NetworkPolicy/db ingress[1] (TCP 9000)",
    ]
    assert page.problems == []
    page.page.close()
