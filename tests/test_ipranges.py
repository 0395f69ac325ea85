import ipaddress
import itertools

from analysis.ipranges import partition
from analysis.model import IPBlock


def net(text: str):  # type: ignore[no-untyped-def]
    return ipaddress.ip_network(text)


def test_no_blocks_gives_one_range_per_family() -> None:
    assert [r.id for r in partition([])] == ["ip:0.0.0.0/0", "ip:::/0"]


def test_ranges_are_contiguous_and_cover_the_space() -> None:
    ranges = partition([net("10.0.0.0/8"), net("10.1.0.0/16"), net("2001:db8::/32")])
    v4 = [r for r in ranges if r.version == 4]
    assert v4[0].first == 0 and v4[-1].last == (1 << 32) - 1
    for a, b in itertools.pairwise(v4):
        assert a.last + 1 == b.first
    ids = [r.id for r in v4]
    assert "ip:10.1.0.0/16" in ids and "ip:10.0.0.0/16" in ids
    assert "ip:0.0.0.0/5,8.0.0.0/7" in ids
    assert sum(1 for r in ranges if r.version == 6) == 3


def test_ipblock_matching_with_except() -> None:
    block = IPBlock(net("10.0.0.0/8"), (net("10.1.0.0/16"),))
    ranges = {r.id: r for r in partition([block.cidr, *block.excepts])}
    assert ranges["ip:10.0.0.0/16"].matched_by(block)
    assert not ranges["ip:10.1.0.0/16"].matched_by(block)
    assert not ranges["ip:0.0.0.0/5,8.0.0.0/7"].matched_by(block)
    assert not ranges["ip:::/0"].matched_by(block)
