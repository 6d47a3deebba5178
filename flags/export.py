"""Flags of what an export writes: quantizations, file names, int8 calibration.

``--quantize`` is shared by mnas-export (every listed file; default all three)
and mnas-latency (the one file it times; default float).
"""

from __future__ import annotations

from absl import flags

from mnas.flags.common import FLAGS, FlagError, check_range, defines
from mnas.latency import QUANTIZATIONS

REPRESENTATIVE_DATASETS = ("random", "digits", "eval")
MAX_CALIBRATION_SAMPLES = 100_000


@defines("quantize")
def define_quantize_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_list(
        "quantize",
        [],
        "Comma list of exports: none (float32), dynamic (int8 weights, float "
        "activations), int8 (full-integer post-training quantization). Default: "
        "all three for mnas-export; none for mnas-latency, which times one.",
        flag_values=flag_values,
    )


@defines("name")
def define_export_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """mnas-export's file naming and int8 calibration data."""
    define_quantize_flag(flag_values)
    flags.DEFINE_string(
        "name",
        None,
        "File name stem; default: the architecture's name (+ scaling).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "representative_dataset",
        "random",
        list(REPRESENTATIVE_DATASETS),
        "int8 calibration data: 'random' (standard normal: fine for latency), "
        "'digits' (the embedded proxy dataset, resized to the export resolution) "
        "or 'eval' (--eval_dataset's --calibration_split, preprocessed as for "
        "evaluation).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "calibration_split",
        "train",
        "Split of --eval_dataset for --representative_dataset=eval (a folder "
        "without that sub-folder uses the folder itself).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_calibration_samples",
        100,
        "Samples for int8 calibration.",
        flag_values=flag_values,
    )


def quantizations_from_flags(
    flag_values: flags.FlagValues, default: tuple[str, ...] = QUANTIZATIONS
) -> tuple[str, ...]:
    """Validated, de-duplicated --quantize list in the order given ('float'
    means 'none'); ``default`` when the flag is not given."""
    if not flag_values["quantize"].present:
        return tuple(default)
    chosen: list[str] = []
    for value in flag_values.quantize:
        value = value.strip().lower()
        if value == "float":
            value = "none"
        if value not in QUANTIZATIONS:
            raise FlagError(
                f"--quantize: unknown quantization {value!r}; choose from "
                f"{','.join(QUANTIZATIONS)}"
            )
        if value not in chosen:
            chosen.append(value)
    if not chosen:
        raise FlagError(f"--quantize is empty; choose from {','.join(QUANTIZATIONS)}")
    return tuple(chosen)


def quantization_from_flags(flag_values: flags.FlagValues) -> str:
    """The single quantization mnas-latency exports and times."""
    chosen = quantizations_from_flags(flag_values, default=("none",))
    if len(chosen) > 1:
        raise FlagError(
            f"--quantize: give one quantization to time, got {','.join(chosen)}"
        )
    return chosen[0]


def check_calibration_flags(flag_values: flags.FlagValues) -> None:
    check_range(
        "num_calibration_samples",
        flag_values.num_calibration_samples,
        1,
        MAX_CALIBRATION_SAMPLES,
    )
    if flag_values.representative_dataset == "eval" and not flag_values.eval_dataset:
        raise FlagError("--representative_dataset=eval needs --eval_dataset")
