"""Flags that pick an architecture (or a search space), shared by every binary.

``--arch`` with the multipliers, resolution and classifier width becomes an
``ArchSpec``; library code never reads absl FLAGS.
"""

from __future__ import annotations

import math
import os

from absl import flags

from mnas.flags.common import FLAGS, check_range, defines, read_json
from mnas.search_space import (
    MAX_MULTIPLIER,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    ArchSpec,
    SpecError,
    parse_arch,
    shown,
)

# --width_multiplier, --depth_multiplier and --resolution have ArchSpec's
# bounds (MAX_MULTIPLIER: EfficientNet-B7 records 2.0 and 3.1; larger values
# build networks no machine here could hold).
MAX_NUM_CLASSES = 100_000


@defines("arch")
def define_arch_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "arch",
        None,
        "A preset name (e.g. mnasnet-a1), comma-separated block strings, or the "
        "path of an architecture JSON file (arch.json, best.json, weights.json). "
        "Default: mnasnet-a1 for mnas-describe and mnas-train; mnas-eval and "
        "mnas-export can take it from --checkpoint.",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "width_multiplier",
        1.0,
        f"Width multiplier applied to --arch, in (0, {MAX_MULTIPLIER:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_float(
        "depth_multiplier",
        1.0,
        f"Depth multiplier applied to --arch, in (0, {MAX_MULTIPLIER:g}].",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "resolution",
        None,
        f"Input resolution in [{MIN_RESOLUTION}, {MAX_RESOLUTION}]; default: the "
        "architecture's own.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "num_classes",
        1000,
        f"Classifier width, in [1, {MAX_NUM_CLASSES}].",
        flag_values=flag_values,
    )


@defines("search_space")
def define_search_space_flag(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string(
        "search_space",
        "mnasnet",
        "Search space name (of the search, or of the lookup table): mnasnet "
        "(the paper's) or mnasnet-mbconv (MBConv with identity shortcuts, e1 in "
        "the first block, e3/e6 after; expansion, kernel, SE, width and depth "
        "searched: the space on which "
        "--evaluation=shared learns, docs/shared_evaluation.md).",
        flag_values=flag_values,
    )


def load_arch(text: str) -> ArchSpec:
    """A preset, block strings, or a JSON file holding an ``ArchSpec`` (or a
    search result with an ``arch`` entry); SpecError naming the file if bad."""
    if not (text.endswith(".json") or os.path.isfile(text)):
        return parse_arch(text)
    data = read_json(text, "architecture file", SpecError)
    if isinstance(data, dict) and "search_space" in data:
        _check_search_space(text, data["search_space"])
    if isinstance(data, dict) and isinstance(data.get("best"), list):
        # A search's best.json: the top-ranked entry's architecture.
        if not data["best"] or not isinstance(data["best"][0], dict):
            raise SpecError(f"architecture file {text!r} lists no best entry")
        data = data["best"][0]
    if isinstance(data, dict) and isinstance(data.get("arch"), dict):
        data = data["arch"]
    if not isinstance(data, dict):
        raise SpecError(f"architecture file {text!r} must hold a JSON object")
    try:
        return ArchSpec.from_dict(data)
    except SpecError as error:  # names the field; add the file
        raise SpecError(f"architecture file {text!r}: {error}") from None


def _check_search_space(path: str, identity: object) -> None:
    """A search result must come from this mnas's version of its space."""
    from mnas.search_space import get_search_space

    name = str(identity).split("/", 1)[0]
    try:
        expected = get_search_space(name).identity()
    except ValueError:
        raise SpecError(
            f"architecture file {path!r} comes from unknown search space "
            f"{shown(identity)}"
        ) from None
    if identity != expected:
        raise SpecError(
            f"architecture file {path!r} comes from search space {shown(identity)}; "
            f"this mnas has {expected!r}"
        )


def _check_multiplier(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 < value <= MAX_MULTIPLIER):
        raise SpecError(f"--{name} must be in (0, {MAX_MULTIPLIER:g}], got {value:g}")


def check_arch_flags(flag_values: flags.FlagValues) -> None:
    """The numeric arch flags, checked before anything is built."""
    _check_multiplier("width_multiplier", flag_values.width_multiplier)
    _check_multiplier("depth_multiplier", flag_values.depth_multiplier)
    if flag_values.resolution is not None:
        check_range(
            "resolution", flag_values.resolution, MIN_RESOLUTION, MAX_RESOLUTION
        )
    check_range("num_classes", flag_values.num_classes, 1, MAX_NUM_CLASSES)


def arch_from_flags(
    flag_values: flags.FlagValues, default: str | None = None, required: bool = True
) -> ArchSpec | None:
    """``--arch`` (or ``default``) with the multipliers and resolution applied.

    Without ``--arch`` and ``default``: None if not ``required``, else
    SpecError.
    """
    check_arch_flags(flag_values)
    text = flag_values.arch or default
    if not text:
        if not required:
            return None
        raise SpecError(
            "--arch is required (a preset, block strings or an arch .json file)"
        )
    spec = load_arch(text)
    if flag_values.width_multiplier != 1.0 or flag_values.depth_multiplier != 1.0:
        spec = spec.scaled(flag_values.width_multiplier, flag_values.depth_multiplier)
    if flag_values.resolution is not None:
        spec = spec.replace(resolution=flag_values.resolution)
    return spec
