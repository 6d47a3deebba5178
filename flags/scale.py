"""Flags of ``mnas-scale``: the compound-scaling family and the grid search.

EfficientNet calls its per-step factors alpha, beta and gamma; here they are
``--depth_coefficient``, ``--width_coefficient`` and
``--resolution_coefficient``, because ``--reward_alpha``/``--fbnet_alpha``
mean other things in other binaries.
"""

from __future__ import annotations

import math

from absl import flags

from mnas.flags.arch import define_arch_flags
from mnas.flags.common import (
    FLAGS,
    FlagError,
    check_finite,
    check_range,
    define_resume_flag,
    define_work_dir_flag,
    defines,
)
from mnas.flags.data import (
    data_config_from_flags,
    define_proxy_flags,
    proxy_data_kwargs,
    proxy_trainer_kwargs,
    trainer_config_from_flags,
)
from mnas.flags.latency import define_latency_flags
from mnas.flags.reward import define_reward_flags, reward_config_from_flags
from mnas.search_space import (
    DEFAULT_SCALING_TOLERANCE,
    MAX_COEFFICIENT,
    MAX_PHI,
    ScalingCoefficients,
)

_DEFAULT = ScalingCoefficients()  # EfficientNet's published (1.2, 1.1, 1.15)

#: Largest --grid_max: the grid's values are coefficients (at most
#: MAX_COEFFICIENT, as --phi is at most MAX_PHI: the library's bounds).
MAX_GRID_VALUE = MAX_COEFFICIENT
#: Most grid values per coefficient: the grid is searched for triples on the
#: constraint in cubic time, and each triple found trains a candidate.
MAX_GRID_POINTS = 100
#: Flag -> the ScalingCoefficients field it sets.
COEFFICIENT_FLAGS = {
    "depth_coefficient": "alpha",
    "width_coefficient": "beta",
    "resolution_coefficient": "gamma",
}


@defines("phi")
def define_scale_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    define_arch_flags(flag_values)
    define_latency_flags(flag_values)
    define_proxy_flags(flag_values)
    define_reward_flags(flag_values)
    define_work_dir_flag(flag_values)
    define_resume_flag(flag_values)
    flags.DEFINE_list(
        "phi",
        ["0", "1", "2", "3"],
        f"Compound coefficients, in [0, {MAX_PHI:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "depth_coefficient",
        _DEFAULT.alpha,
        f"Depth factor per unit of phi (EfficientNet's alpha), in "
        f"[1, {MAX_COEFFICIENT:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "width_coefficient",
        _DEFAULT.beta,
        f"Width factor per unit of phi (EfficientNet's beta), in "
        f"[1, {MAX_COEFFICIENT:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "resolution_coefficient",
        _DEFAULT.gamma,
        f"Resolution factor per unit of phi (EfficientNet's gamma), in "
        f"[1, {MAX_COEFFICIENT:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "tolerance",
        DEFAULT_SCALING_TOLERANCE,
        "Allowed |depth * width^2 * resolution^2 - 2| of the coefficients (the "
        "published ones give 1.92).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "measure_latency",
        True,
        "Family mode: measure each member's latency on the backend.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "export_dir",
        None,
        "Family mode: write each member as <name>.tflite here.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "grid_search",
        False,
        "Search the three coefficients at phi = 1 on the proxy task.",
        flag_values=flag_values,
    )
    flags.DEFINE_list(
        "triples",
        [],
        "Grid search: depth:width:resolution coefficient triples; default: five "
        "spread over the constraint (mnas.scaling.DEFAULT_TRIPLES).",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "grid_step",
        None,
        "Grid search: instead of --triples, every triple on the grid 1.0, "
        "1.0 + step, ..., --grid_max within --tolerance.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "grid_max",
        1.6,
        f"Grid search: largest grid value, in [1, {MAX_GRID_VALUE:g}].",
        flag_values=flag_values,
    )


def phis_from_flags(flag_values: flags.FlagValues) -> tuple[float, ...]:
    phis = []
    for text in flag_values.phi:
        try:
            value = float(text)
        except ValueError:
            raise FlagError(f"--phi values must be numbers, got {text!r}") from None
        if not (math.isfinite(value) and 0 <= value <= MAX_PHI):
            raise FlagError(f"--phi values must be in [0, {MAX_PHI:g}], got {text!r}")
        phis.append(int(value) if value.is_integer() else value)
    if not phis:
        raise FlagError("--phi needs at least one value")
    return tuple(phis)


def coefficients_from_flags(flag_values: flags.FlagValues) -> ScalingCoefficients:
    """The three coefficients, checked against the FLOPs constraint."""
    check_finite(flag_values, "tolerance", *COEFFICIENT_FLAGS)
    for name in COEFFICIENT_FLAGS:
        check_range(name, flag_values[name].value, 1.0, MAX_COEFFICIENT)
    coefficients = ScalingCoefficients(
        **{field: flag_values[name].value for name, field in COEFFICIENT_FLAGS.items()}
    )
    coefficients.check(flag_values.tolerance)
    return coefficients


def _triples(flag_values: flags.FlagValues) -> tuple[tuple[float, float, float], ...]:
    from mnas.scaling import DEFAULT_TRIPLES, grid_triples, parse_triples

    if flag_values.grid_step is None:
        if flag_values.triples:
            return parse_triples(flag_values.triples)
        return DEFAULT_TRIPLES
    if flag_values.triples:
        raise FlagError("give --triples or --grid_step, not both")
    check_finite(flag_values, "grid_step", "grid_max", "tolerance")
    step, high = flag_values.grid_step, flag_values.grid_max
    if not 0 < step <= high - 1.0 or high > MAX_GRID_VALUE:
        raise FlagError(
            f"--grid_step must be in (0, --grid_max - 1] and --grid_max in "
            f"[1, {MAX_GRID_VALUE:g}], got --grid_step={step:g} --grid_max={high:g}"
        )
    if (high - 1.0) / step + 1 > MAX_GRID_POINTS:
        raise FlagError(
            f"--grid_step must be >= (--grid_max - 1) / {MAX_GRID_POINTS - 1} (at "
            f"most {MAX_GRID_POINTS} grid values), got --grid_step={step:g} "
            f"--grid_max={high:g}"
        )
    return tuple(grid_triples(step, 1.0, high, flag_values.tolerance))


def scaling_search_config_from_flags(flag_values: flags.FlagValues):
    """The grid search's ``mnas.scaling.ScalingSearchConfig`` (imports
    TensorFlow once the flags are checked). It scores by the reward when
    --target_ms is given."""
    check_finite(flag_values, "tolerance")
    reward = None
    if flag_values["target_ms"].present:
        reward = reward_config_from_flags(flag_values)
    proxy_data_kwargs(flag_values)  # checks before the slow imports below
    proxy_trainer_kwargs(flag_values)
    from mnas.scaling import ScalingSearchConfig

    return ScalingSearchConfig(
        triples=_triples(flag_values),
        tolerance=flag_values.tolerance,
        data=data_config_from_flags(flag_values),
        trainer=trainer_config_from_flags(flag_values),
        reward=reward,
        seed=flag_values.seed,
    )


#: Retired names of mnas-scale's flags.
RENAMED = {
    "output_dir": "work_dir",
    "alpha": "depth_coefficient",
    "beta": "width_coefficient",
    "gamma": "resolution_coefficient",
    "epochs": "proxy_epochs",
    "latency": "measure_latency",
}
