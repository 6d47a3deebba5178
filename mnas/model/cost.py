"""Parameters and multiply-adds from the spec alone, per layer and in total.

Counts follow the usual convention of the MnasNet/EfficientNet papers:
multiply-adds of convolutions and the classifier, squeeze-excite 1x1 convs
and its gating multiply included; batch norm (folded at inference), activations, pooling and
additions are free. Parameters count everything Keras counts, batch-norm
moving statistics included, so totals equal ``model.count_params()``.
Layers are counted by walking their op's structure (``mnas.model.ops``), so a
new op is counted without a change here.
"""

from __future__ import annotations

import dataclasses

from mnas.model import ops
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


class Counter(ops.ConcretePrimitives):
    """``mnas.model.ops`` primitives that count instead of compute: a tensor
    is its shape (height, width, channels)."""

    def __init__(self, layer: LayerPlan | None = None) -> None:
        super().__init__(ops.NO_LAYER if layer is None else layer.facts)
        self.params = 0
        self.macs = 0

    def _conv(self, x, k: int, c_out: int, stride: int, depthwise: bool = False):
        height, width = conv_output_size(x[:2], stride)
        weights = k * k * (x[2] if not depthwise else 1) * c_out
        self.params += weights
        self.macs += height * width * weights
        return (height, width, c_out)

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        self.params += 4 * width  # gamma, beta, moving mean, moving variance
        return self._conv(x, kernel, width, stride)

    def depthwise_bn_act(self, x, kernel, stride):
        self.params += 4 * x[2]
        return self._conv(x, kernel, x[2], stride, depthwise=True)

    def global_pool(self, x, part):
        return (1, 1, x[2])

    def conv_bias(self, x, part, width):
        self.params += width
        return self._conv(x, 1, width, 1)

    def activation(self, x, part):
        return x

    def sigmoid(self, x, part):
        return x

    def multiply(self, x, gate, part):
        self.macs += x[0] * x[1] * x[2]  # squeeze-excite's gating multiply
        return x

    def avg_pool(self, x, stride, part):
        return (*conv_output_size(x[:2], stride), x[2])

    def add(self, y, shortcut):
        return y


def compute_stats(
    spec: ArchSpec,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
) -> ModelStats:
    if input_shape is None:
        input_shape = (spec.resolution, spec.resolution, 3)
    rows = []

    def row(name: str, block: str, count: Counter, shape) -> None:
        rows.append(LayerStats(name, block, shape, count.params, count.macs))

    stem = Counter()
    shape = stem.conv_bn(tuple(input_shape), "", spec.scaled_stem_filters(), 3, 2)
    row("stem", "stem", stem, shape)
    for layer in plan_layers(spec, tuple(input_shape[:2])):
        count = Counter(layer)
        shape = ops.apply_layer(
            count, shape, layer.block.conv_op, layer.op_args, layer.block.skip
        )
        row(layer.name, f"block{layer.block_index}", count, shape)
    head = Counter()
    shape = head.conv_bn(shape, "", spec.scaled_head_filters(), 1, 1)
    row("head", "head", head, shape)
    classifier = Counter()
    row(
        "classifier",
        "head",
        classifier,
        classifier.conv_bias((1, 1, shape[2]), "", num_classes),
    )
    return ModelStats(tuple(rows))
