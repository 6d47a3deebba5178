"""The per-layer description printed by ``mnas-describe``."""

from __future__ import annotations

from mnas.io.tables import format_table
from mnas.model.cost import compute_stats
from mnas.search_space import ArchSpec


def describe(spec: ArchSpec, num_classes: int = 1000) -> str:
    input_shape = (spec.resolution, spec.resolution, 3)
    stats = compute_stats(spec, input_shape, num_classes)
    rows = [
        (
            layer.name,
            layer.block,
            "x".join(map(str, layer.output_shape)),
            layer.params,
            layer.macs,
        )
        for layer in stats.layers
    ]
    rows.append(("total", "", "", stats.params, stats.macs))
    header = [
        f"architecture: {spec.name}  resolution: {spec.resolution}  "
        f"width x{spec.width_multiplier:g}  depth x{spec.depth_multiplier:g}  "
        f"classes: {num_classes}",
        "blocks: " + ", ".join(spec.block_strings),
        "",
    ]
    footer = [
        "",
        f"parameters: {stats.params / 1e6:.3f}M   multiply-adds: {stats.macs / 1e6:.1f}M",
    ]
    table = format_table(("layer", "block", "output", "params", "MACs"), rows)
    return "\n".join(header) + table + "\n".join(footer)
