"""Flags of the latency lookup table: where it is, how a search uses it, and
the table modes of mnas-latency (--build_lut, --predict, --evaluate_predictor).
"""

from __future__ import annotations

import os

from absl import flags

from mnas.flags.arch import define_search_space_flag
from mnas.flags.common import (
    FLAGS,
    FlagError,
    check_range,
    define_output_dir_flag,
    define_seed_flag,
    defines,
    flag_dict,
)
from mnas.latency import DEFAULT_LUT_PATH, LutJob
from mnas.search_space import ArchSpec

LATENCY_SOURCES = ("measured", "predicted", "verified")
LUT_MODES = ("build_lut", "predict", "evaluate_predictor")  # as in LutJob
#: Upper bounds that keep a mistyped count from running for days.
MAX_ARCHS = 10_000
MAX_ROUNDS = 100


@defines("lut")
def define_lut_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The table file (mnas-latency, mnas-search, mnas-dnas)."""
    flags.DEFINE_string(
        "lut",
        DEFAULT_LUT_PATH,
        "Latency lookup-table file (JSON lines, built by `mnas-latency "
        "--build_lut`); {backend} and {space} are replaced by the latency "
        "backend (host for mnas-dnas) and search-space names.",
        flag_values=flag_values,
    )


@defines("latency")
def define_latency_source_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    """How mnas-search obtains a candidate's latency."""
    flags.DEFINE_enum(
        "latency",
        "measured",
        list(LATENCY_SOURCES),
        "How a candidate's latency is obtained: 'measured' on the backend; "
        "'predicted' from the lookup table (--lut, built by `mnas-latency "
        "--build_lut`); 'verified': predicted, and the top-k trials are also "
        "measured, both numbers recorded in the journal.",
        flag_values=flag_values,
    )


@defines("lut_calibrated")
def define_lut_calibrated_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_bool(
        "lut_calibrated",
        False,
        "Search with the table's affine calibration instead of the raw sum of "
        "entries (best.json reports both predictions).",
        flag_values=flag_values,
    )


@defines("build_lut")
def define_lut_job_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The table modes of mnas-latency (with the space, seed and output folder
    they read)."""
    define_search_space_flag(flag_values)
    define_seed_flag(flag_values)
    define_output_dir_flag(flag_values)
    flags.DEFINE_bool(
        "build_lut",
        False,
        "Build (or resume) the lookup table of --search_space on the backend: "
        "every distinct layer, then a calibration on --calibration_archs models.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "predict",
        False,
        "Predict --arch's latency from the lookup table (per-layer breakdown).",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "evaluate_predictor",
        False,
        "Sample --num_archs architectures, measure them whole and compare with "
        "the predictor and a multiply-adds baseline. Adaptive latency measures "
        "every model twice, independently: a prediction inside the first "
        "measurement's interval agrees, and the second measurement scored the "
        "same way is the noise ceiling.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "calibration_archs",
        8,
        "Whole models (sampled with --seed + 1000) the table's calibration is "
        "fitted on after --build_lut; 0 skips calibration.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "lut_rounds",
        2,
        "--build_lut measures every entry this many times, in full passes minutes "
        "apart, and keeps each entry's fastest median (robust to bursts of load). "
        "Adaptive latency also records each entry's interval and measures an "
        "entry flagged unstable again after the pass (--latency_remeasures).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_archs",
        100,
        "Architectures for --evaluate_predictor.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "rounds",
        3,
        "Interleaved timing rounds for whole models (median of round medians) "
        "with --nolatency_adaptive; adaptive measurement chooses its own rounds.",
        flag_values=flag_values,
    )


def lut_path_from_flags(
    flag_values: flags.FlagValues, space_name: str, backend: str | None = None
) -> str:
    """--lut with {backend} (default: --latency_backend, else host) and {space}
    filled in and ``~`` expanded."""
    if backend is None:
        backend = getattr(flag_values, "latency_backend", None) or "host"
    try:
        path = flag_values.lut.format(backend=backend, space=space_name)
    except (KeyError, IndexError, ValueError):
        raise FlagError(
            f"--lut may only use the fields {{backend}} and {{space}}, got "
            f"{flag_values.lut!r}"
        ) from None
    if not path:
        raise FlagError("--lut is empty; give the lookup-table file")
    return os.path.expanduser(path)


def lut_mode_from_flags(flag_values: flags.FlagValues) -> str | None:
    """The one table mode asked for, None for none; FlagError for several."""
    modes = [mode for mode in LUT_MODES if flag_values[mode].value]
    if len(modes) > 1:
        raise FlagError(f"give one of --{', --'.join(modes)}, not several")
    return modes[0] if modes else None


def lut_job_from_flags(
    flag_values: flags.FlagValues, mode: str, spec: ArchSpec | None
) -> LutJob:
    """The ``LutJob`` of a table mode (``spec``: --predict's architecture)."""
    if mode == "predict" and spec is None:
        raise FlagError("--predict needs --arch=<preset | strings | json>")
    for name, high in (
        ("num_archs", MAX_ARCHS),
        ("rounds", MAX_ROUNDS),
        ("lut_rounds", MAX_ROUNDS),
    ):
        check_range(name, flag_values[name].value, 1, high)
    check_range("calibration_archs", flag_values.calibration_archs, 0, MAX_ARCHS)
    space = flag_values.search_space
    return LutJob(
        mode=mode,
        lut_path=lut_path_from_flags(flag_values, space),
        space_name=space,
        spec=spec,
        **flag_dict(
            flag_values,
            (
                "calibration_archs",
                "lut_rounds",
                "num_archs",
                "rounds",
                "seed",
                "output_dir",
            ),
        ),
    )
