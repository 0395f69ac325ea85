"""Port and connection set algebra against plain Python sets of ports."""

from hypothesis import given
from hypothesis import strategies as st

from analysis.ports import ALL_PORTS, ConnectionSet, PortSet

SMALL = 40  # a small universe makes overlaps and adjacency frequent


def interval(draw_lo: int, width: int) -> tuple[int, int]:
    return (draw_lo, min(SMALL, draw_lo + width))


intervals = st.lists(st.builds(interval, st.integers(1, SMALL), st.integers(0, 8)), max_size=6)


def as_set(ps: PortSet) -> set[int]:
    return {p for lo, hi in ps.intervals for p in range(lo, hi + 1)}


def brute(ivs: list[tuple[int, int]]) -> set[int]:
    return {p for lo, hi in ivs for p in range(lo, hi + 1)}


@given(intervals, intervals)
def test_set_operations_match_sets_of_ports(
    a: list[tuple[int, int]], b: list[tuple[int, int]]
) -> None:
    pa, pb = PortSet.of(*a), PortSet.of(*b)
    assert as_set(pa | pb) == brute(a) | brute(b)
    assert as_set(pa & pb) == brute(a) & brute(b)
    assert as_set(pa - pb) == brute(a) - brute(b)


@given(intervals)
def test_normal_form_is_canonical(a: list[tuple[int, int]]) -> None:
    ps = PortSet.of(*a)
    # sorted, disjoint, non-adjacent: equal sets are equal values
    for (_lo1, hi1), (lo2, _hi2) in zip(ps.intervals, ps.intervals[1:], strict=False):
        assert hi1 + 1 < lo2
    assert PortSet.of(*reversed(a)) == ps
    if ps:
        assert PortSet.parse(str(ps)) == ps


def test_formatting() -> None:
    assert str(PortSet.of((80, 80), (443, 443), (8000, 8080))) == "80,443,8000-8080"
    assert str(PortSet.of((1, 65535))) == "all"
    assert str(PortSet.of((81, 81), (80, 80))) == "80-81"
    assert PortSet.parse("80,443,8000-8080") == PortSet.of((80, 80), (443, 443), (8000, 8080))


def test_connection_sets_drop_empty_protocols() -> None:
    tcp = ConnectionSet.of({"TCP": PortSet.single(80), "UDP": PortSet()})
    assert tcp.to_json() == {"TCP": "80"}
    everything = ConnectionSet.all()
    assert (everything - tcp).to_json() == {"TCP": "1-79,81-65535", "UDP": "all", "SCTP": "all"}
    assert (everything & tcp) == tcp
    assert not (tcp - everything)
    assert ConnectionSet.parse({"UDP": "all", "TCP": "80"}).ports("UDP") == ALL_PORTS
