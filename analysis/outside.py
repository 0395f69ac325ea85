"""Representative endpoints for the pods a partial tree does not define (``cluster_scope``).

A repository rarely holds a whole cluster. A rule that admits ``namespaceSelector:
{team: frontend}`` admits every pod of every such namespace, whether the tree defines one or
not; and other tools create pods in the namespaces the tree does define. Under
``cluster_scope: partial`` the tree gets **representatives**: synthetic workloads of kind
``Outside`` that stand for every pod the tree does not define, one per distinct way the
selectors of the trees compared can treat such a pod.

The pods a selector can tell apart are split by the selectors themselves: for every label
key a selector mentions, a label value is one of the values some selector names, another
value, or no label at all (on a key with Calico's string conditions, a value for every
combination of them some value reaches: ``text_witnesses``); two pods that agree on which
selectors match them are treated alike by every policy (selectors are all a policy sees of
a pod's labels and its namespace's). The distinct match vectors are found key by key
(``_Space.atoms``), each with the fewest labels that reach it, so a representative carries
what its selectors require and nothing a ``NotIn``/``DoesNotExist`` would exclude unless a
separate one shows the difference.

- Outside namespaces: one representative namespace per distinct match vector of the
  namespace selectors (``~ns[team=frontend]``; the one matching no selector that needs a
  label is ``~ns[*]``, any other namespace), and in each, one per distinct vector of the pod
  selectors that can apply there (``~ns[team=frontend]/pod[app=web]``; ``/*``: any pod).
- Defined namespaces: one per distinct vector of the pod selectors that can apply there
  (``~payments/pod[app=batch]``, ``~payments/*``), except where a workload of the tree
  already has exactly those labels (and no named port, as representatives have none): it
  stands for them.

The namespaces a representative namespace stands for hold no policy of the tree, and their
own policies are unknown: a pod there is judged only by the cluster-scoped admin policies
(AdminNetworkPolicy; the baseline applies only where no NetworkPolicy isolates, which is
unknown) and otherwise allowed, so a path from it is judged by the in-tree destination's
ingress alone, and a path to it by the in-tree source's egress.

Why one module of 700 lines: the representatives, the selector conditions that
split them (string conditions included) and their description are one construction whose
parts share its bitmask space (``_KeyMasks``, ``_Space``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import string
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from analysis.calicocompile import TextRequirement, outside_selectors
from analysis.calicoselector import SERVICE_ACCOUNT_PREFIX, compare
from analysis.ciliummodel import SERVICE_ACCOUNT, cilium_selectors
from analysis.errors import ManifestError
from analysis.model import (
    NAMESPACE_NAME_LABEL,
    LabelRequirement,
    Labels,
    LabelSelector,
    Namespace,
    Source,
    Tree,
    Workload,
)

OUTSIDE_KIND = "Outside"
OUTSIDE_PREFIX = "~"  # no Kubernetes name contains it: representatives never collide
OTHER_VALUE = "~other"  # a label value no selector names (not a valid label value)
MAX_REPRESENTATIVES = 4096
NO_SOURCE = Source("", 0)
SETTINGS_FILE = ".github/reachdiff.yml"
# A representative's labels hold its pods' service account (SERVICE_ACCOUNT) and that
# account's labels (these keys), so selectors split them like labels (``pod_view``).
ACCOUNT_LABEL_PREFIX = SERVICE_ACCOUNT_PREFIX
DEFAULT_ACCOUNT = "default"  # in every namespace, without labels unless the tree says
ACCOUNT_SHOWN = "serviceaccount"  # SERVICE_ACCOUNT as ids and descriptions show it


class ClusterScope(enum.Enum):
    PARTIAL = "partial"  # the tree is part of a cluster: pods it does not define count
    COMPLETE = "complete"  # every namespace and pod of the cluster is in the tree


def is_outside_namespace(namespace: str) -> bool:
    """Whether a namespace is a representative one (not in the tree: policies unknown)."""
    return namespace.startswith(OUTSIDE_PREFIX)


@dataclass(frozen=True, slots=True)
class _Condition:
    """Where a pod selector applies: pods of namespace ``name``, or of namespaces that
    ``selector`` matches."""

    name: str | None
    selector: LabelSelector | None


@dataclass(frozen=True, slots=True)
class Selectors:
    """Every selector of the trees compared that can look at a pod's or namespace's labels."""

    namespaces: tuple[LabelSelector, ...]
    pods: tuple[tuple[_Condition, LabelSelector], ...]
    # The pod selectors by the namespace name, or namespace selector, they apply under.
    by_name: Mapping[str, tuple[LabelSelector, ...]]
    by_selector: Mapping[LabelSelector, tuple[LabelSelector, ...]]

    @staticmethod
    def of(trees: Iterable[Tree]) -> Selectors:
        namespaces: dict[LabelSelector, None] = {}
        pods: dict[tuple[_Condition, LabelSelector], None] = {}
        for tree in trees:
            for policy in tree.policies:
                own = _Condition(policy.namespace, None)
                pods[(own, policy.pod_selector)] = None
                for rule in policy.ingress + policy.egress:
                    for peer in rule.peers:
                        if peer.ip_block is not None:
                            continue
                        if peer.namespace_selector is None:
                            pods[(own, peer.pod_selector or LabelSelector())] = None
                            continue
                        namespaces[peer.namespace_selector] = None
                        if peer.pod_selector is not None:
                            where = _Condition(None, peer.namespace_selector)
                            pods[(where, peer.pod_selector)] = None
            for admin in tree.admin_policies:
                namespaces[admin.subject_namespaces] = None
                if admin.subject_pods is not None:
                    pods[(_Condition(None, admin.subject_namespaces), admin.subject_pods)] = None
                for arule in admin.ingress + admin.egress:
                    for apeer in arule.peers:
                        if apeer.namespace_selector is None:
                            continue
                        namespaces[apeer.namespace_selector] = None
                        if apeer.kind == "pods" and apeer.pod_selector is not None:
                            where = _Condition(None, apeer.namespace_selector)
                            pods[(where, apeer.pod_selector)] = None
            # Calico's selectors, condition by condition (analysis.calicocompile).
            calico_namespaces, calico_pods = outside_selectors(tree)
            namespaces.update(dict.fromkeys(calico_namespaces))
            for name, ns_selector, pod_selector in calico_pods:
                pods[(_Condition(name, ns_selector), pod_selector)] = None
            for cilium in cilium_selectors(tree):
                # What a Cilium selector asks of a namespace, and of a pod there (its
                # service account split like a label: see ``Representative.workload``).
                namespaces[cilium.namespaces] = None
                pod = cilium.pods
                if cilium.accounts:
                    pod = LabelSelector(
                        pod.match_labels, (*pod.match_expressions, *cilium.accounts)
                    )
                pods[(_Condition(None, cilium.namespaces), pod)] = None
        by_name: dict[str, list[LabelSelector]] = {}
        by_selector: dict[LabelSelector, list[LabelSelector]] = {}
        for where, selector in pods:
            if where.name is not None:
                by_name.setdefault(where.name, []).append(selector)
            elif where.selector is not None:
                by_selector.setdefault(where.selector, []).append(selector)
        return Selectors(
            tuple(namespaces),
            tuple(pods),
            {k: tuple(v) for k, v in by_name.items()},
            {k: tuple(v) for k, v in by_selector.items()},
        )

    def pod_selectors(self, name: str | None, labels: Mapping[str, str]) -> list[LabelSelector]:
        """The pod selectors that can apply to a pod of a namespace (``name`` None: a
        representative namespace, which holds no policy of any tree)."""
        out: dict[LabelSelector, None] = dict.fromkeys(self.by_name.get(name, ()) if name else ())
        for where, selectors in self.by_selector.items():
            if where.matches(labels):
                out.update(dict.fromkeys(selectors))
        return list(out)


@dataclass(frozen=True, slots=True)
class Representative:
    """Every pod the tree does not define that the selectors treat like ``labels`` in
    ``namespace`` (a representative namespace, or one the tree defines)."""

    namespace: str
    labels: Labels
    pod_part: str  # "*" (any pod) or "pod[app=web]"
    namespace_words: str  # "in a namespace labelled team=frontend", "in namespace payments"
    pod_words: str  # "any pod", "pods labelled app=web"

    @property
    def id(self) -> str:
        return representative_id(self.namespace, self.pod_part)

    @property
    def description(self) -> str:
        return f"{self.pod_words} {self.namespace_words} (not in this repository)"

    def workload(self) -> Workload:
        # The service account selectors name is split like a label, and so are its labels
        # (``pcsa.`` keys, as Calico shows them on pods): the pods a representative stands
        # for run as it, or (without it) as one no selector names.
        labels = tuple((k, v) for k, v in self.labels if not _is_account_key(k))
        account = dict(self.labels).get(SERVICE_ACCOUNT, OTHER_VALUE)
        account_labels = tuple(
            (k[len(ACCOUNT_LABEL_PREFIX) :], v)
            for k, v in self.labels
            if k.startswith(ACCOUNT_LABEL_PREFIX)
        )
        return Workload(
            OUTSIDE_KIND,
            self.namespace,
            self.pod_part,
            labels,
            (),
            False,
            NO_SOURCE,
            account,
            account_labels,
        )


def describe(namespace: str, pod_part: str) -> str:
    """A representative in words, from its namespace and pod part: "any pod in a namespace
    labelled team=frontend (not in this repository)"."""
    if is_outside_namespace(namespace):
        shown = namespace[len(OUTSIDE_PREFIX) + 3 : -1]  # inside "~ns[...]"
        name_only = f"{NAMESPACE_NAME_LABEL}="
        if shown == "*":
            where = "in any other namespace"
        elif shown.startswith(name_only) and "," not in shown:
            where = f"in namespace {shown[len(name_only) :]}"
        else:
            where = f"in a namespace labelled {shown}"
        pods = "any pod"
    else:
        where = f"in namespace {namespace}"
        pods = "any other pod"
    if pod_part != "*":
        pods = _pod_words(pod_part[4:-1])  # inside "pod[...]"
    return f"{pods} {where} (not in this repository)"


def _pod_words(shown: str) -> str:
    """``app=web,serviceaccount=api,pcsa.role=db`` in words: "pods labelled app=web
    running as service account api labelled role=db" (a pod runs as some account: one no
    selector names is not shown)."""
    labels, account, account_labels = [], "", []
    for part in shown.split(","):
        key = part.split("=")[0].rstrip("!")
        if key == ACCOUNT_SHOWN:
            account = f"service account {part[len(key) + 1 :]}"
        elif key.startswith(ACCOUNT_LABEL_PREFIX):
            account_labels.append(part[len(ACCOUNT_LABEL_PREFIX) :])
        else:
            labels.append(part)
    words = f"pods labelled {','.join(labels)}" if labels else "pods"
    if account or account_labels:
        words += f" running as {account or 'a service account'}"
        if account_labels:
            words += f" labelled {','.join(account_labels)}"
    return words


def representative_id(namespace: str, pod_part: str) -> str:
    prefix = "" if is_outside_namespace(namespace) else OUTSIDE_PREFIX
    return f"{prefix}{namespace}/{pod_part}"


@dataclass(frozen=True, slots=True)
class OutsideWorld:
    """The representatives of one tree, derived from the selectors of every tree compared."""

    namespaces: tuple[Namespace, ...]  # the representative namespaces
    representatives: tuple[Representative, ...]
    selectors: Selectors
    namespace_atoms: tuple[tuple[Labels, str], ...]  # (labels, name) of every atom
    accounts: _Accounts  # the service accounts whose labels are known, per namespace

    def tree(self, tree: Tree) -> Tree:
        """``tree`` with the representatives added (namespaces and workloads stay sorted)."""
        if not self.representatives:
            return tree
        workloads = sorted(
            [*tree.workloads, *(r.workload() for r in self.representatives)],
            key=lambda w: (w.namespace, w.kind, w.name),
        )
        namespaces = sorted([*tree.namespaces, *self.namespaces], key=lambda n: n.name)
        # Every other field (policies, warnings, what was not analysed...) is the tree's.
        return dataclasses.replace(tree, namespaces=tuple(namespaces), workloads=tuple(workloads))

    def locate(
        self,
        namespace: str,
        namespace_labels: Mapping[str, str] | None,
        labels: Mapping[str, str],
        tree: Tree,
        account: str | None = DEFAULT_ACCOUNT,
        account_labels: Mapping[str, str] | None = None,
    ) -> str:
        """The id of the endpoint of ``tree`` (this world's tree, representatives added)
        that stands for a concrete pod the tree does not define, in ``namespace`` (with
        ``namespace_labels`` when the tree does not define it), running as service
        ``account`` (with ``account_labels`` when the tree does not define it; None: not
        known, so a pod the selectors would split by it is placed by nothing): a
        representative, or the workload labelled exactly like it."""
        defined = {n.name: dict(n.labels) for n in tree.namespaces}
        condition_name: str | None = namespace
        home = namespace
        if namespace not in defined:
            ns_labels = {**(namespace_labels or {}), NAMESPACE_NAME_LABEL: namespace}
            space = _Space(self.selectors.namespaces, namespace=True)
            vector = space.vector(ns_labels)
            home = next(
                name for atom, name in self.namespace_atoms if space.vector(dict(atom)) == vector
            )
            condition_name = None
        pods = _Space(self.selectors.pod_selectors(condition_name, defined[home]), False)
        known_here = self.accounts.in_namespace(namespace if condition_name else None)
        if account is None and any(_is_account_key(k) for k in pods.per_key):
            raise LookupError("its service account is unknown, and selectors split pods by it")
        account = account or DEFAULT_ACCOUNT
        accounts = _account_map(tree)
        own = accounts.get((namespace, account), known_here.get(account))
        if own is None:  # an account the trees do not define: its labels as given
            if account_labels is None and any(
                k.startswith(ACCOUNT_LABEL_PREFIX) for k in pods.per_key
            ):
                raise LookupError(
                    f"the labels of its service account {account} are unknown, and selectors "
                    "split pods by them"
                )
            own = tuple((account_labels or {}).items())
        vector = pods.vector(pod_view(labels, account, dict(own)))
        atom = next(a for a in pods.atoms(accounts=known_here) if pods.vector(dict(a)) == vector)
        for rep in self.representatives:
            if rep.namespace == home and rep.labels == atom:
                return rep.id
        for w in tree.workloads:
            same = w.namespace == home and pods.vector(_workload_view(w, accounts)) == vector
            if same and _stands_for_others(w):
                return w.id
        raise LookupError("no endpoint stands for this pod")


def outside_world(tree: Tree, compared: Sequence[Tree]) -> OutsideWorld:
    """The representatives of ``tree`` given the selectors of ``compared`` (the trees of a
    diff, both; or the tree alone): the same selectors give the same representatives on
    both sides, so they pair up across a diff by id. Of ``tree`` only its namespaces are
    read (``analysis.prepared`` reuses the result for a tree with the same namespaces)."""
    selectors = Selectors.of(compared)
    defined = {n.name: n for n in tree.namespaces}
    accounts = _Accounts.of(compared, defined)
    reps: list[Representative] = []
    namespaces: list[Namespace] = []
    atoms_kept: list[tuple[Labels, str]] = []
    space = _Space(selectors.namespaces, namespace=True)
    for atom in space.atoms(defined):
        shown = [kv for kv in atom if kv[0] != NAMESPACE_NAME_LABEL or kv[1] != OTHER_VALUE]
        name = f"{OUTSIDE_PREFIX}ns[{space.show(shown) or '*'}]"
        labels = tuple(
            sorted(
                (k, name if k == NAMESPACE_NAME_LABEL and v == OTHER_VALUE else v) for k, v in atom
            )
        )
        namespaces.append(Namespace(name, labels, None))
        atoms_kept.append((labels, name))
        words = (
            f"in a namespace labelled {space.show(shown)}" if shown else "in any other namespace"
        )
        pods = selectors.pod_selectors(None, dict(labels))
        reps.extend(_pod_representatives(name, pods, words, set(), accounts.in_namespace(None)))
    same_everywhere = _unrepresented(compared)
    for ns in tree.namespaces:
        pods = selectors.pod_selectors(ns.name, dict(ns.labels))
        skip = same_everywhere.get(ns.name, set())
        here = accounts.in_namespace(ns.name)
        reps.extend(_pod_representatives(ns.name, pods, f"in namespace {ns.name}", skip, here))
    if len(reps) > MAX_REPRESENTATIVES:
        raise _too_many(
            f"the selectors of this tree tell apart more than {MAX_REPRESENTATIVES} kinds of "
            "pods outside it; set cluster_scope: complete if the repository holds the whole "
            "cluster"
        )
    return OutsideWorld(tuple(namespaces), tuple(reps), selectors, tuple(atoms_kept), accounts)


def _too_many(message: str) -> ManifestError:
    # Bounded work on hostile input; the setting is the fix, so the error points at it.
    return ManifestError(SETTINGS_FILE, 1, f"cluster_scope: partial: {message}")


def with_outside(tree: Tree, compared: Sequence[Tree] | None = None) -> Tree:
    return outside_world(tree, compared if compared is not None else (tree,)).tree(tree)


def _unrepresented(trees: Sequence[Tree]) -> dict[str, set[Labels]]:
    """Per namespace, the views (``pod_view``) of workloads that stand for undefined pods
    alike in every tree compared (so the representative would only repeat them)."""
    found: dict[str, set[Labels]] | None = None
    for tree in trees:
        here: dict[str, set[Labels]] = {}
        accounts = _account_map(tree)
        for w in tree.workloads:
            if _stands_for_others(w):
                view = tuple(sorted(_workload_view(w, accounts).items()))
                here.setdefault(w.namespace, set()).add(view)
        if found is None:
            found = here
        else:
            found = {ns: labels & here.get(ns, set()) for ns, labels in found.items()}
    return found or {}


def _is_account_key(key: str) -> bool:
    return key == SERVICE_ACCOUNT or key.startswith(ACCOUNT_LABEL_PREFIX)


def pod_view(
    labels: Mapping[str, str], account: str, account_labels: Mapping[str, str]
) -> dict[str, str]:
    """What the selectors split pods by, of one pod: its labels, its service account and
    that account's labels, keyed as a representative's labels are."""
    view = {k: v for k, v in labels.items() if not _is_account_key(k)}
    view[SERVICE_ACCOUNT] = account
    view.update((ACCOUNT_LABEL_PREFIX + k, v) for k, v in account_labels.items())
    return view


def _workload_view(w: Workload, accounts: Mapping[tuple[str, str], Labels]) -> dict[str, str]:
    own = accounts.get((w.namespace, w.service_account), w.account_labels)
    return pod_view(dict(w.labels), w.service_account, dict(own))


def _account_map(tree: Tree) -> dict[tuple[str, str], Labels]:
    calico = tree.calico
    accounts = calico.service_accounts if calico is not None else ()
    return {(a.namespace, a.name): a.labels for a in accounts}


@dataclass(frozen=True, slots=True)
class _Accounts:
    """The service accounts whose labels are known, by namespace: those every tree
    compared defines alike, and ``default`` (unlabelled: Kubernetes creates it so) where
    no tree defines it. A pod running as one carries its labels; a pod running as another
    account may carry any."""

    defined: tuple[tuple[str, str, Labels], ...]  # (namespace, account, labels)
    outside: tuple[tuple[str, Labels], ...]  # in every namespace no tree compared defines

    @staticmethod
    def of(trees: Sequence[Tree], namespaces: Collection[str]) -> _Accounts:
        known: dict[tuple[str, str], Labels] | None = None
        named: set[tuple[str, str]] = set()
        for tree in trees:
            here = _account_map(tree)
            named |= here.keys()
            known = here if known is None else {k: v for k, v in known.items() if here.get(k) == v}
        alike = dict(known or {})
        for ns in namespaces:
            if (ns, DEFAULT_ACCOUNT) not in named:
                alike[(ns, DEFAULT_ACCOUNT)] = ()
        # A tree's "default" account in a namespace the tree does not define: not known.
        outside = any(a == DEFAULT_ACCOUNT and ns not in namespaces for ns, a in named)
        return _Accounts(
            tuple(sorted((ns, a, labels) for (ns, a), labels in alike.items())),
            () if outside else ((DEFAULT_ACCOUNT, ()),),
        )

    def in_namespace(self, namespace: str | None) -> dict[str, Labels]:
        """The known accounts of ``namespace`` (None: a namespace no tree defines)."""
        if namespace is None:
            return dict(self.outside)
        return {a: labels for ns, a, labels in self.defined if ns == namespace}


def _stands_for_others(w: Workload) -> bool:
    """Whether ``w`` stands for the undefined pods its namespace's selectors cannot tell
    from it: they are taken to be like it (its replicas, or pods of the same app), named
    ports included. Host-network pods stand for nothing: selectors never match them."""
    return w.kind != OUTSIDE_KIND and not w.host_network


def _pod_representatives(
    namespace: str,
    selectors: Sequence[LabelSelector],
    words: str,
    skip: set[Labels],
    accounts: Mapping[str, Labels],
) -> list[Representative]:
    """The representatives of the pods of ``namespace`` (``accounts``: the labels of the
    service accounts known there)."""
    out = []
    space = _Space(selectors, namespace=False)
    # A workload the selectors cannot tell from the pods of an atom stands for them.
    covered = {space.vector(dict(labels)) for labels in skip}
    for labels in space.atoms(accounts=accounts):
        vector = space.vector(dict(labels))
        if vector in covered:
            continue
        shown = space.show(labels)
        pod_part = f"pod[{shown}]" if labels else "*"
        pod_words = _pod_words(shown) if labels else "any pod"
        if not labels and namespace and not is_outside_namespace(namespace):
            pod_words = "any other pod"
        out.append(Representative(namespace, labels, pod_part, words, pod_words))
    return out


def _requirements(selector: LabelSelector) -> list[LabelRequirement]:
    return [
        *(LabelRequirement(k, "In", (v,)) for k, v in selector.match_labels),
        *selector.match_expressions,
    ]


@dataclass(frozen=True, slots=True)
class _KeyMasks:
    """The requirements on one label key, as selector bitmasks by operator (and by value
    for In and NotIn), so a value's failures cost a few int operations; Calico's string
    conditions (``TextRequirement``) are tested on the value itself."""

    in_any: int
    in_value: Mapping[str, int]
    not_in_value: Mapping[str, int]
    exists: int
    does_not_exist: int
    texts: tuple[tuple[str, str, int], ...] = ()  # (Calico operator, string, bit)
    text_any: int = 0

    @staticmethod
    def of(reqs: Iterable[tuple[int, LabelRequirement]]) -> _KeyMasks:
        in_any = exists = does_not_exist = text_any = 0
        in_value: dict[str, int] = {}
        not_in_value: dict[str, int] = {}
        texts: list[tuple[str, str, int]] = []
        for n, req in reqs:
            bit = 1 << n
            if isinstance(req, TextRequirement):
                texts.append((req.operator, req.values[0], bit))
                text_any |= bit
            elif req.operator == "In":
                in_any |= bit
                for v in req.values:
                    in_value[v] = in_value.get(v, 0) | bit
            elif req.operator == "NotIn":
                for v in req.values:
                    not_in_value[v] = not_in_value.get(v, 0) | bit
            elif req.operator == "Exists":
                exists |= bit
            else:
                does_not_exist |= bit
        return _KeyMasks(
            in_any, in_value, not_in_value, exists, does_not_exist, tuple(texts), text_any
        )

    def fails(self, value: str | None) -> int:
        if value is None:  # In, Exists and the string conditions need the label
            return self.in_any | self.exists | self.text_any
        out = (
            (self.in_any & ~self.in_value.get(value, 0))
            | self.not_in_value.get(value, 0)
            | self.does_not_exist
        )
        for op, literal, bit in self.texts:
            if not compare(op, value, literal):
                out |= bit
        return out

    def named(self) -> set[str]:
        """The values In and NotIn name."""
        return {*self.in_value, *self.not_in_value}

    def is_other(self, value: str) -> bool:
        """Whether ``value`` is none a requirement names and matches no string condition
        (shown as what it is not)."""
        return value not in self.named() and not self.text_any & ~self.fails(value)

    def shown_other(self) -> str:
        """What a value that ``is_other`` is not: ``a|b|web*|*web|*api*``."""
        globs = {"starts with": "{}*", "ends with": "*{}", "contains": "*{}*"}
        order = sorted(self.texts, key=lambda t: (t[1], list(globs).index(t[0])))
        texts = [globs[op].format(literal) for op, literal, _ in order]
        return "|".join([*sorted(self.named()), *dict.fromkeys(texts)])


@dataclass(frozen=True, slots=True)
class _Grammar:
    """The strings a label's value can be: a Kubernetes label value (empty, or at most 63
    characters of ``[A-Za-z0-9-_.]`` beginning and ending alphanumeric), a namespace's
    name (its ``kubernetes.io/metadata.name``: a DNS-1123 label, ``[a-z0-9-]``, at most 63,
    lowercase alphanumeric at both ends), or a service account's (split like a label,
    ``SERVICE_ACCOUNT``: a DNS-1123 subdomain, ``[a-z0-9-.]``, at most 253)."""

    edge: str  # what may begin and end a value
    middle: str  # what may only be inside one
    empty: bool
    max_length: int = 63

    def valid(self, value: str) -> bool:
        if not value:
            return self.empty
        return (
            len(value) <= self.max_length
            and value[0] in self.edge
            and value[-1] in self.edge
            and all(c in self.edge or c in self.middle for c in value)
        )


LABEL_VALUES = _Grammar(string.ascii_letters + string.digits, "-_.", True)
NAMESPACE_NAMES = _Grammar(string.ascii_lowercase + string.digits, "-", False)
ACCOUNT_NAMES = _Grammar(string.ascii_lowercase + string.digits, "-.", False, 253)  # DNS-1123
# The filler a witness uses for characters no condition names (readable ones first).
_FILLERS = "xyz" + string.digits + string.ascii_letters + "-_."
# Bounded work on hostile string conditions: the states the search below may visit.
MAX_TEXT_STATES = 16 * MAX_REPRESENTATIVES


@functools.lru_cache(maxsize=256)
def text_witnesses(
    key: str, grammar: _Grammar, texts: tuple[tuple[str, str], ...], exact: tuple[str, ...]
) -> tuple[str, ...]:
    """Values of ``grammar`` that together reach everything a value can be to the string
    conditions ``texts`` ((Calico operator, string)) and to equality with each of ``exact``
    (the values In and NotIn name, and names a value must not take): the shortest value of
    each combination, found by a search over the values, character by character.

    A state holds all that decides a value's conditions and its extensions' conditions:
    where it stands in an Aho-Corasick automaton of the ``contains`` and ``ends with``
    strings (its node is its longest ending that begins one of them, so it fixes which
    ``ends with`` hold and, with the characters to come, which ``contains`` will), the
    ``contains`` strings already seen, which ``starts with``/``exact`` strings it still
    agrees with, its length up to the longest of those (beyond it no longer matters),
    and whether it may end here (last character alphanumeric). Two values in one state
    match the same conditions, now and after any same continuation, so visiting every
    state breadth first, from one shortest value each, reaches every combination any
    value reaches; characters no string names all act alike, so one of each kind (may
    end a value or not) stands for them. A combination that needs more than
    ``max_length`` characters is one no value reaches, and it is not found. The search
    visits at most ``MAX_TEXT_STATES`` states."""
    allowed = set(grammar.edge) | set(grammar.middle)

    def usable(text: str) -> bool:
        # A string with a character no value has is never matched: nothing to track.
        return bool(text) and all(c in allowed for c in text)

    contains = sorted({t for op, t in texts if op == "contains" and usable(t)})
    endings = sorted({t for op, t in texts if op == "ends with" and usable(t)})
    beginnings = sorted(
        {t for op, t in texts if op == "starts with" and usable(t)}
        | {v for v in exact if usable(v)}
    )
    named = {c for t in (*contains, *endings, *beginnings) for c in t}
    edge, middle = (
        [c for c in _FILLERS if c in kind and c not in named][:1]
        for kind in (grammar.edge, grammar.middle)
    )
    alphabet = [*edge, *sorted(named), *middle]
    # The automaton: a trie of the contains and ends-with strings, completed with failure
    # links into a transition table over the alphabet; seen[node] the contains strings
    # ending at node (or at its failure links).
    goto: list[dict[str, int]] = [{}]
    seen: list[int] = [0]
    for i, text in enumerate((*contains, *endings)):
        node = 0
        for c in text:
            if c not in goto[node]:
                goto[node][c] = len(goto)
                goto.append({})
                seen.append(0)
            node = goto[node][c]
        if i < len(contains):
            seen[node] |= 1 << i
    delta: list[dict[str, int]] = [{} for _ in goto]
    failure = [0] * len(goto)
    queue = deque([0])
    while queue:
        u = queue.popleft()
        for c in alphabet:
            v = goto[u].get(c)
            if v is None:
                delta[u][c] = delta[failure[u]][c] if u else 0
                continue
            delta[u][c] = v
            failure[v] = delta[failure[u]][c] if u else 0
            seen[v] |= seen[failure[v]]
            queue.append(v)
    longest = max((len(b) for b in beginnings), default=0)
    # agree[i][c]: the beginnings a value still agrees with when its character i is c.
    agree = [
        {
            c: sum(1 << j for j, b in enumerate(beginnings) if len(b) <= i or b[i] == c)
            for c in alphabet
        }
        for i in range(longest)
    ]
    # Many states, one combination: only its first (shortest) value is kept, so each
    # space that reads the values computes only as many vectors as there are combinations.
    exacts = set(exact)
    found: dict[tuple[tuple[bool, ...], str | None], str] = {}

    def keep(value: str) -> None:
        matched = tuple(compare(op, value, t) for op, t in texts)
        found.setdefault((matched, value if value in exacts else None), value)

    if grammar.empty:
        keep("")
    start = (0, 0, (1 << len(beginnings)) - 1, 0, False)
    visited = {start}
    frontier = deque([(start, "")])
    while frontier:
        (node, contained, agreeing, length, _), value = frontier.popleft()
        if len(value) >= grammar.max_length:
            continue
        for c in alphabet:
            if not value and c not in grammar.edge:
                continue
            step = delta[node][c]
            state = (
                step,
                contained | seen[step],
                agreeing & agree[length][c] if length < longest else agreeing,
                min(length + 1, longest + 1),
                c in grammar.edge,
            )
            if state in visited:
                continue
            visited.add(state)
            if len(visited) > MAX_TEXT_STATES:
                raise _too_many(
                    f"the string conditions (contains, starts with, ends with) on label {key} "
                    f"are too many to split its values by (more than {MAX_TEXT_STATES} "
                    "states); set cluster_scope: complete if the repository holds the whole "
                    "cluster"
                )
            if c in grammar.edge:
                keep(value + c)
            frontier.append((state, value + c))
    return tuple(found.values())


# A vector's canonical label set and how it was reached: (label count, option ranks, labels).
_State = tuple[int, tuple[int, ...], Labels]
_States = dict[int, _State]
_AFTER_EVERY_OPTION = 1 << 30  # the rank of a known account: after the options of a key


def _keep(states: _States, vector: int, state: _State) -> None:
    """Keep ``state`` for ``vector`` unless one with fewer labels, or as many reached by
    earlier choices, is kept already."""
    known = states.get(vector)
    if known is None or (state[0], state[1]) < (known[0], known[1]):
        states[vector] = state


def _labels_of(states: _States) -> list[Labels]:
    return sorted(tuple(sorted(labels)) for _, _, labels in states.values())


class _Space:
    """The label sets ``selectors`` can tell apart. A match vector is an int, bit ``n``
    set when selector ``n`` matches; a label set's vector is found key by key (the keys
    the selectors mention), so nothing is matched selector by selector."""

    def __init__(self, selectors: Sequence[LabelSelector], namespace: bool) -> None:
        self.selectors = selectors
        self.namespace = namespace
        self.full = (1 << len(selectors)) - 1
        self.per_key: dict[str, list[tuple[int, LabelRequirement]]] = {}
        for n, selector in enumerate(selectors):
            for req in _requirements(selector):
                self.per_key.setdefault(req.key, []).append((n, req))
        if namespace:
            self.per_key.setdefault(NAMESPACE_NAME_LABEL, [])
        self._fails: dict[tuple[str, str | None], int] = {}
        self._masks: dict[str, _KeyMasks] = {}

    def masks(self, key: str) -> _KeyMasks:
        masks = self._masks.get(key)
        if masks is None:
            masks = self._masks[key] = _KeyMasks.of(self.per_key.get(key, ()))
        return masks

    def fails(self, key: str, value: str | None) -> int:
        """The selectors a label ``key`` with ``value`` (None: absent) rules out. Every pod
        runs as a service account: without one named, it runs as another."""
        if value is None and key == SERVICE_ACCOUNT:
            value = OTHER_VALUE
        found = self._fails.get((key, value))
        if found is None:
            found = self._fails[(key, value)] = self.masks(key).fails(value)
        return found

    def vector(self, labels: Mapping[str, str]) -> int:
        out = self.full
        for key in self.per_key:
            out &= ~self.fails(key, labels.get(key))
        return out

    def atoms(
        self, defined: Collection[str] = (), accounts: Mapping[str, Labels] | None = None
    ) -> list[Labels]:
        """One label set per distinct vector some label set reaches. Keys are decided one
        at a time; each vector keeps its canonical label set: the fewest labels, then the
        earliest choices (no label, then the values selectors name, then another value).
        The canonical choice depends only on which label sets exist, so the same selectors
        give the same representatives on both sides of a diff. For namespaces the name
        label is always there, and never one of the ``defined`` names. For pods, the
        service account and its labels are decided together: a pod runs as one of the
        ``accounts`` whose labels are known, with exactly those, or as another account
        with any (so no label set is canonical that no pod can carry)."""
        start: _States = {self.full: (0, (), ())}
        keys = sorted(self.per_key)
        if accounts is None:
            return _labels_of(self._decide(start, keys, defined, ()))
        account_keys = [k for k in keys if _is_account_key(k)]
        states = self._decide(start, account_keys, (), accounts)
        for rank, (name, own) in enumerate(sorted(accounts.items())):
            view = pod_view({}, name, dict(own))
            fail = 0
            for key in account_keys:
                fail |= self.fails(key, view.get(key))
            labels = tuple((k, view[k]) for k in account_keys if k in view)
            _keep(states, self.full & ~fail, (len(labels), (_AFTER_EVERY_OPTION + rank,), labels))
        other_keys = [k for k in keys if not _is_account_key(k)]
        return _labels_of(self._decide(states, other_keys, defined, ()))

    def _decide(
        self,
        states: _States,
        keys: Iterable[str],
        defined: Collection[str],
        accounts: Collection[str],
    ) -> _States:
        """``states`` with ``keys`` decided in turn (the service account never one of
        ``accounts``)."""
        for key in keys:
            values = sorted(self.masks(key).named())
            options: list[str | None]
            if self.masks(key).texts:
                options = self._text_options(key, defined, accounts)
            elif self.namespace and key == NAMESPACE_NAME_LABEL:
                options = [OTHER_VALUE, *(v for v in values if v not in defined)]
            elif key == SERVICE_ACCOUNT:
                options = [None, *(v for v in values if v not in accounts), OTHER_VALUE]
            else:
                options = [None, *values, OTHER_VALUE]
            # Values every requirement on the key treats alike are one option (the first).
            chosen: dict[int, tuple[int, str | None]] = {}
            for rank, option in enumerate(options):
                chosen.setdefault(self.fails(key, option), (rank, option))
            next_states: _States = {}
            for vector, (count, ranks, labels) in states.items():
                for fail, (rank, option) in chosen.items():
                    more = () if option is None else ((key, option),)
                    state = (count + len(more), (*ranks, rank), labels + more)
                    _keep(next_states, vector & ~fail, state)
            states = next_states
            if len(states) > MAX_REPRESENTATIVES:
                raise _too_many(
                    f"the selectors of this tree tell apart more than {MAX_REPRESENTATIVES} "
                    "kinds of pods or namespaces outside it; set cluster_scope: complete if "
                    "the repository holds the whole cluster"
                )
        return states

    def _text_options(
        self, key: str, defined: Collection[str], accounts: Collection[str]
    ) -> list[str | None]:
        """The values of a key with string conditions, in the order of preference: none,
        the values named, the strings themselves, another value, then a shortest value for
        every other combination of conditions (``text_witnesses``); only values a label
        can have (a namespace's name: not one the tree defines). A namespace's name and a
        pod's service account are always there, and are real names (no "~other", which
        Calico's string conditions would read as the string it is)."""
        masks = self.masks(key)
        name = self.namespace and key == NAMESPACE_NAME_LABEL
        account = not self.namespace and key == SERVICE_ACCOUNT
        grammar = NAMESPACE_NAMES if name else ACCOUNT_NAMES if account else LABEL_VALUES
        excluded = set(defined) if name else set(accounts) if account else set()
        always = name or account
        texts = tuple(sorted({(op, literal) for op, literal, _ in masks.texts}))
        witnesses = text_witnesses(key, grammar, texts, tuple(sorted(masks.named() | excluded)))
        reached = {self.fails(key, w) for w in witnesses}
        preferred = [*sorted(masks.named()), *sorted({t for _, t in texts})]
        options: list[str | None] = [] if always else [None]
        options.extend(v for v in preferred if grammar.valid(v) and v not in excluded)
        # "~other" is no value, but it stands for one when it matches what they match.
        if not always and self.fails(key, OTHER_VALUE) in reached and masks.is_other(OTHER_VALUE):
            options.append(OTHER_VALUE)
        options.extend(w for w in witnesses if w not in excluded)
        return options

    def show(self, labels: Iterable[tuple[str, str]]) -> str:
        """``team=frontend,env!=dev|prod``: a value no selector names is shown as what it
        is not (``!=`` the named values, and ``web*``/``*web``/``*web*`` for the strings
        it does not start with, end with, contain) or, when none is named, as ``key=*``."""
        parts = []
        for key, value in labels:
            shown = ACCOUNT_SHOWN if key == SERVICE_ACCOUNT else key
            masks = self.masks(key)
            if value == OTHER_VALUE or (masks.texts and masks.is_other(value)):
                named = masks.shown_other()
                parts.append(f"{shown}!={named}" if named else f"{shown}=*")
            else:
                parts.append(f"{shown}={value}")
        return ",".join(parts)
