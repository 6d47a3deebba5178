"""Flags that pick an architecture, shared by every binary.

Only binaries import this module; it turns flag values into an ``ArchSpec`` so
that library code never reads absl FLAGS.
"""

from __future__ import annotations

import os

from absl import flags

from mnas.search_space import ArchSpec, SpecError, parse_arch


def define_arch_flags(default_arch: str | None = "mnasnet-a1") -> None:
    flags.DEFINE_string(
        "arch",
        default_arch,
        "A preset name (e.g. mnasnet-a1), comma-separated block strings, or the "
        "path of an architecture JSON file (best.json, arch.json).",
    )
    flags.DEFINE_float("width_multiplier", 1.0, "Width multiplier applied to the arch.")
    flags.DEFINE_float("depth_multiplier", 1.0, "Depth multiplier applied to the arch.")
    flags.DEFINE_integer(
        "resolution", None, "Input resolution; defaults to the architecture's own."
    )
    flags.DEFINE_integer("num_classes", 1000, "Classifier width.")


def load_arch(text: str) -> ArchSpec:
    """A preset, block strings, or a JSON file holding an ``ArchSpec`` (or a
    search result with an ``arch`` entry)."""
    if text.endswith(".json") or os.path.isfile(text):
        import json

        try:
            with open(text, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as error:
            raise SpecError(
                f"cannot read architecture file {text!r}: {error}"
            ) from None
        except json.JSONDecodeError as error:
            raise SpecError(
                f"architecture file {text!r} is not valid JSON: {error}"
            ) from None
        if isinstance(data, dict) and "search_space" in data:
            _check_search_space(text, data["search_space"])
        if isinstance(data, dict) and isinstance(data.get("best"), list):
            # A search's best.json: the top-ranked entry's architecture.
            if not data["best"] or not isinstance(data["best"][0], dict):
                raise SpecError(f"architecture file {text!r} lists no best entry")
            data = data["best"][0]
        if isinstance(data, dict) and "arch" in data and isinstance(data["arch"], dict):
            data = data["arch"]
        if not isinstance(data, dict):
            raise SpecError(f"architecture file {text!r} must hold a JSON object")
        return ArchSpec.from_dict(data)
    return parse_arch(text)


def _check_search_space(path: str, identity: object) -> None:
    """A search result must come from this mnas's version of its space."""
    from mnas.search_space import get_search_space

    name = str(identity).split("/", 1)[0]
    try:
        expected = get_search_space(name).identity()
    except ValueError:
        raise SpecError(
            f"architecture file {path!r} comes from unknown search space {identity!r}"
        ) from None
    if identity != expected:
        raise SpecError(
            f"architecture file {path!r} comes from search space {identity!r}; "
            f"this mnas has {expected!r}"
        )


def arch_from_flags(flag_values: flags.FlagValues) -> ArchSpec:
    if not flag_values.arch:
        raise SpecError("--arch is required")
    spec = load_arch(flag_values.arch)
    if flag_values.width_multiplier != 1.0 or flag_values.depth_multiplier != 1.0:
        spec = spec.scaled(flag_values.width_multiplier, flag_values.depth_multiplier)
    if flag_values.resolution is not None:
        if flag_values.resolution < 8:
            raise SpecError(f"--resolution must be >= 8, got {flag_values.resolution}")
        spec = spec.replace(resolution=flag_values.resolution)
    if flag_values.num_classes < 1:
        raise SpecError(f"--num_classes must be >= 1, got {flag_values.num_classes}")
    return spec
