"""Parameters and multiply-adds from the spec alone, per layer and in total.

Counts follow the usual convention of the MnasNet/EfficientNet papers:
multiply-adds of convolutions and the classifier, squeeze-excite 1x1 convs
and its gating multiply included; batch norm (folded at inference), activations, pooling and
additions are free. Parameters count everything Keras counts, batch-norm
moving statistics included, so totals equal ``model.count_params()``.
"""

from __future__ import annotations

import dataclasses

from mnas.model.plan import LayerPlan, conv_output_size, plan_layers
from mnas.search_space import ArchSpec


@dataclasses.dataclass(frozen=True)
class LayerStats:
    name: str
    block: str
    output_shape: tuple[int, int, int]
    params: int
    macs: int


@dataclasses.dataclass(frozen=True)
class ModelStats:
    layers: tuple[LayerStats, ...]

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


class _Counter:
    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def conv(self, size, k: int, c_in: int, c_out: int, bias: bool = False) -> None:
        self.params += k * k * c_in * c_out + (c_out if bias else 0)
        self.macs += size[0] * size[1] * k * k * c_in * c_out

    def depthwise(self, size, k: int, channels: int) -> None:
        self.params += k * k * channels
        self.macs += size[0] * size[1] * k * k * channels

    def bn(self, channels: int) -> None:
        self.params += 4 * channels  # gamma, beta, moving mean, moving variance

    def se(self, size, channels: int, reduced: int) -> None:
        self.conv((1, 1), 1, channels, reduced, bias=True)
        self.conv((1, 1), 1, reduced, channels, bias=True)
        self.macs += size[0] * size[1] * channels  # the gating multiply


def _layer_counts(layer: LayerPlan) -> _Counter:
    block, count = layer.block, _Counter()
    out = layer.output_size
    if block.conv_op == "conv":
        count.conv(out, block.kernel_size, layer.input_filters, layer.output_filters)
        count.bn(layer.output_filters)
        if block.has_se:
            count.se(out, layer.output_filters, layer.se_filters)
    else:
        expanded = layer.expanded_filters
        if block.conv_op == "mbconv" and block.expand_ratio != 1:
            count.conv(layer.input_size, 1, layer.input_filters, expanded)
            count.bn(expanded)
        count.depthwise(out, block.kernel_size, expanded)
        count.bn(expanded)
        if block.has_se:
            count.se(out, expanded, layer.se_filters)
        count.conv(out, 1, expanded, layer.output_filters)
        count.bn(layer.output_filters)
    if layer.pool_skip_projects:
        count.conv(out, 1, layer.input_filters, layer.output_filters)
        count.bn(layer.output_filters)
    return count


def compute_stats(
    spec: ArchSpec,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
) -> ModelStats:
    if input_shape is None:
        input_shape = (spec.resolution, spec.resolution, 3)
    height, width, channels = input_shape
    rows = []

    stem = _Counter()
    stem_size = conv_output_size((height, width), 2)
    stem_filters = spec.scaled_stem_filters()
    stem.conv(stem_size, 3, channels, stem_filters)
    stem.bn(stem_filters)
    rows.append(
        LayerStats("stem", "stem", (*stem_size, stem_filters), stem.params, stem.macs)
    )

    layers = plan_layers(spec, (height, width))
    for layer in layers:
        count = _layer_counts(layer)
        rows.append(
            LayerStats(
                layer.name,
                f"block{layer.block_index}",
                (*layer.output_size, layer.output_filters),
                count.params,
                count.macs,
            )
        )

    last_size = layers[-1].output_size
    last_filters = layers[-1].output_filters
    head_filters = spec.scaled_head_filters()
    head = _Counter()
    head.conv(last_size, 1, last_filters, head_filters)
    head.bn(head_filters)
    rows.append(
        LayerStats("head", "head", (*last_size, head_filters), head.params, head.macs)
    )

    classifier = _Counter()
    classifier.conv((1, 1), 1, head_filters, num_classes, bias=True)
    rows.append(
        LayerStats(
            "classifier",
            "head",
            (1, 1, num_classes),
            classifier.params,
            classifier.macs,
        )
    )
    return ModelStats(tuple(rows))
