"""A compound-scaled family of one architecture: size, cost and latency per phi.

Library code for ``mnas-scale``'s family mode: each member is scaled by
``mnas.search_space.scaling``, counted analytically, and (with a backend or an
export folder) exported at its own resolution and timed at batch 1.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Sequence

from mnas.io.tables import format_table
from mnas.latency.export import export_to_file, tflite_file_name
from mnas.model.cost import compute_stats
from mnas.search_space import ArchSpec
from mnas.search_space.scaling import (
    DEFAULT_TOLERANCE,
    ScalingCoefficients,
    scale_family,
)

HEADERS = (
    "phi",
    "name",
    "resolution",
    "width",
    "depth",
    "dropout",
    "params",
    "MACs",
    "latency ms",
)


@dataclasses.dataclass(frozen=True)
class FamilyMember:
    phi: float
    spec: ArchSpec
    params: int
    macs: int
    latency_ms: float | None = None
    tflite_path: str | None = None

    def row(self) -> list:
        spec = self.spec
        return [
            f"{self.phi:g}",
            spec.name,
            spec.resolution,
            round(spec.width_multiplier, 4),
            round(spec.depth_multiplier, 4),
            spec.dropout_rate,
            self.params,
            self.macs,
            "-" if self.latency_ms is None else self.latency_ms,
        ]


def build_family(
    base: ArchSpec,
    phis: Sequence[float],
    coefficients: ScalingCoefficients | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    num_classes: int = 1000,
    backend=None,
    export_dir: str | None = None,
) -> list[FamilyMember]:
    """One member per phi; each exported (to ``export_dir``, else a scratch
    folder) and timed on ``backend`` (a ``LatencyBackend``) when given."""
    coefficients = coefficients or ScalingCoefficients()
    specs = scale_family(base, tuple(phis), coefficients, tolerance)
    members = []
    with tempfile.TemporaryDirectory(prefix="mnas-scale-") as scratch:
        folder = export_dir or scratch
        for phi, spec in zip(phis, specs):
            stats = compute_stats(spec, num_classes=num_classes)
            latency_ms = path = None
            if backend is not None or export_dir:
                path = os.path.join(folder, tflite_file_name(spec.name))
                export_to_file(spec, path, num_classes=num_classes, clear_session=True)
                if backend is not None:
                    latency_ms = float(backend.measure(path).median_ms)
            members.append(
                FamilyMember(
                    phi=phi,
                    spec=spec,
                    params=stats.params,
                    macs=stats.macs,
                    latency_ms=latency_ms,
                    tflite_path=path if export_dir else None,
                )
            )
    return members


def family_table(members: Sequence[FamilyMember]) -> str:
    return format_table(HEADERS, [member.row() for member in members])
