"""A compound-scaled family: each member's size, cost, export and latency."""

from __future__ import annotations

from mnas.model.cost import compute_stats
from mnas.scaling.family import build_family, family_table
from mnas.search_space import parse_arch
from mnas.search_space.scaling import ScalingCoefficients, scale
from mnas.testing.lut import FixedBackend

TINY = parse_arch("r1_k3_s11_e1_i16_o8,r1_k3_s22_e3_i8_o16").replace(
    resolution=32, name="tiny"
)


def test_members_without_timing_export_nothing():
    members = build_family(TINY, (0, 1, 2), num_classes=10)
    assert [m.spec for m in members] == [scale(TINY, phi) for phi in (0, 1, 2)]
    for member in members:
        stats = compute_stats(member.spec, num_classes=10)
        assert (member.params, member.macs) == (stats.params, stats.macs)
        assert member.latency_ms is None and member.tflite_path is None
    rows = family_table(members).splitlines()
    assert rows[0].split()[:3] == ["phi", "name", "resolution"]
    assert [row.split()[1] for row in rows[2:]] == ["tiny", "tiny-phi1", "tiny-phi2"]
    assert rows[2].split()[-1] == "-"


def test_members_are_exported_and_timed(tmp_path):
    backend = FixedBackend(ms_by_name={"tiny.tflite": 1.5, "tiny-phi1.tflite": 2.5})
    coefficients = ScalingCoefficients(1.0, 1.05, 1.35)
    members = build_family(
        TINY, (0, 1), coefficients, num_classes=10, backend=backend,
        export_dir=str(tmp_path),
    )  # fmt: skip
    assert [m.latency_ms for m in members] == [1.5, 2.5]
    assert backend.calls == ["tiny.tflite", "tiny-phi1.tflite"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny-phi1.tflite",
        "tiny.tflite",
    ]
    assert members[1].spec.resolution == 40  # 32 * 1.35 rounded to 8
    assert members[1].tflite_path == str(tmp_path / "tiny-phi1.tflite")
