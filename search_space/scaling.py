"""EfficientNet compound scaling: one base architecture into a family.

``scale(arch, phi)`` multiplies depth by ``alpha**phi`` (repeats rounded up
through ``depth_multiplier``), width by ``beta**phi`` (filters rounded to the
depth divisor through ``width_multiplier``) and resolution by ``gamma**phi``
(rounded to a multiple of 8), under the constraint ``alpha * beta**2 *
gamma**2 ~= 2`` so that each step of ``phi`` roughly doubles the FLOPs.

Dropout schedule: linear in ``phi`` from the base's dropout rate to 0.5 at
``phi = 7`` (and 0.5 beyond), the range EfficientNet-B0 (0.2) ... B7 (0.5)
spans; a base already at or above 0.5 keeps its rate. The published B1 ... B7
presets do not follow ``alpha**phi`` exactly (B1 has depth 1.1, not 1.2), so
they are registered from the published table (``EFFICIENTNET_TABLE``) and not
computed by ``scale``.

Data only: no Keras here.
"""

from __future__ import annotations

import dataclasses

from mnas.search_space.arch_spec import ArchSpec
from mnas.search_space.errors import SpecError
from mnas.search_space.validation import check_real

DEFAULT_ALPHA = 1.2
DEFAULT_BETA = 1.1
DEFAULT_GAMMA = 1.15
# The published triple gives 1.920; 0.1 admits it and its neighbours.
DEFAULT_TOLERANCE = 0.1
FLOPS_TARGET = 2.0
RESOLUTION_MULTIPLE = 8
MAX_DROPOUT = 0.5
#: Largest phi: EfficientNet's family stops at 7; far beyond it the
#: multipliers leave ``ArchSpec``'s bounds anyway.
MAX_PHI = 10.0
#: Largest alpha, beta or gamma (each is about 1.1-1.2 under the constraint).
MAX_COEFFICIENT = 4.0
DROPOUT_FULL_PHI = 7.0

# name: (width, depth, resolution, dropout) exactly as published (Tan & Le 2019).
EFFICIENTNET_TABLE: dict[str, tuple[float, float, int, float]] = {
    "efficientnet-b0": (1.0, 1.0, 224, 0.2),
    "efficientnet-b1": (1.0, 1.1, 240, 0.2),
    "efficientnet-b2": (1.1, 1.2, 260, 0.3),
    "efficientnet-b3": (1.2, 1.4, 300, 0.3),
    "efficientnet-b4": (1.4, 1.8, 380, 0.4),
    "efficientnet-b5": (1.6, 2.2, 456, 0.4),
    "efficientnet-b6": (1.8, 2.6, 528, 0.5),
    "efficientnet-b7": (2.0, 3.1, 600, 0.5),
}


class ScalingError(SpecError):
    """Bad compound-scaling input: phi, coefficients or the FLOPs constraint."""


@dataclasses.dataclass(frozen=True)
class ScalingCoefficients:
    """Per-step depth (alpha), width (beta) and resolution (gamma) factors."""

    alpha: float = DEFAULT_ALPHA
    beta: float = DEFAULT_BETA
    gamma: float = DEFAULT_GAMMA

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = check_real(
                name, getattr(self, name), 1.0, MAX_COEFFICIENT, error=ScalingError
            )
            object.__setattr__(self, name, value)

    @property
    def flops_factor(self) -> float:
        """``alpha * beta**2 * gamma**2``: FLOPs growth per unit of phi."""
        return self.alpha * self.beta**2 * self.gamma**2

    def check(self, tolerance: float = DEFAULT_TOLERANCE) -> None:
        check_real("tolerance", tolerance, 0.0, error=ScalingError)
        product = self.flops_factor
        if abs(product - FLOPS_TARGET) > tolerance:
            raise ScalingError(
                f"alpha * beta^2 * gamma^2 = {product:.4f} "
                f"(alpha={self.alpha:g}, beta={self.beta:g}, gamma={self.gamma:g}) "
                f"is off from {FLOPS_TARGET:g} by more than the tolerance "
                f"{tolerance:g}"
            )

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.gamma)


def scaled_resolution(
    resolution: int, factor: float, multiple: int = RESOLUTION_MULTIPLE
) -> int:
    """``resolution * factor`` rounded to the nearest multiple (at least one)."""
    return max(multiple, int(round(resolution * factor / multiple)) * multiple)


def scaled_dropout(base_rate: float, phi: float) -> float:
    """Linear from ``base_rate`` (phi 0) to 0.5 (phi >= 7); never lowered."""
    if base_rate >= MAX_DROPOUT:
        return base_rate
    fraction = min(phi / DROPOUT_FULL_PHI, 1.0)
    return round(base_rate + (MAX_DROPOUT - base_rate) * fraction, 6)


def _phi_text(phi: float) -> str:
    return f"{phi:g}"


def scale(
    arch: ArchSpec,
    phi: float,
    alpha: float = DEFAULT_ALPHA,
    beta: float = DEFAULT_BETA,
    gamma: float = DEFAULT_GAMMA,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ArchSpec:
    """``arch`` compound-scaled by ``phi``; ``phi = 0`` returns it unchanged."""
    if not isinstance(arch, ArchSpec):
        raise ScalingError(f"arch must be an ArchSpec, got {type(arch).__name__}")
    phi = check_real("phi", phi, 0.0, MAX_PHI, error=ScalingError)
    coefficients = ScalingCoefficients(alpha, beta, gamma)
    coefficients.check(tolerance)
    if phi == 0:
        return arch
    alpha, beta, gamma = coefficients.as_tuple()
    return arch.replace(
        depth_multiplier=arch.depth_multiplier * alpha**phi,
        width_multiplier=arch.width_multiplier * beta**phi,
        resolution=scaled_resolution(arch.resolution, gamma**phi),
        dropout_rate=scaled_dropout(arch.dropout_rate, phi),
        name=f"{arch.name}-phi{_phi_text(phi)}",
    )


def scale_family(
    arch: ArchSpec,
    phis: tuple[float, ...],
    coefficients: ScalingCoefficients = ScalingCoefficients(),
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[ArchSpec]:
    return [
        scale(arch, phi, *coefficients.as_tuple(), tolerance=tolerance) for phi in phis
    ]


def efficientnet(base: ArchSpec, name: str) -> ArchSpec:
    """An EfficientNet-B* preset from the published table applied to B0."""
    width, depth, resolution, dropout = EFFICIENTNET_TABLE[name]
    return base.replace(
        width_multiplier=width,
        depth_multiplier=depth,
        resolution=resolution,
        dropout_rate=dropout,
        name=name,
    )
