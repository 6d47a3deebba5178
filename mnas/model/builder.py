"""Builds a Keras functional model from an ``ArchSpec``.

Layer names are deterministic (``stem_conv``, ``block3_layer1_dwconv``,
``head_conv``...), so weights can be mapped by name. Each layer's structure
comes from its op in ``mnas.model.ops``; this module supplies the Keras
primitives. The graph is
inference-friendly: every conv is followed by batch norm (folded by the TFLite
converter) and a plain activation layer (fused into the conv).
"""

from __future__ import annotations

import keras

from mnas.model import ops
from mnas.model.plan import LayerPlan, conv_names, depthwise_names, plan_layers
from mnas.search_space import ArchSpec

_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "swish": "swish"}


def _conv_init() -> keras.initializers.Initializer:
    # Official MnasNet/EfficientNet: fan-out scaled normal.
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


class KerasPrimitives(ops.ConcretePrimitives):
    """``mnas.model.ops`` primitives as Keras layers named after ``prefix``
    (a layer's name, ``stem`` or ``head``); batch norm and activation are
    separate layers (the converter folds and fuses them)."""

    def __init__(
        self,
        spec: ArchSpec,
        prefix: str,
        layer: LayerPlan | None = None,
        drop_rate: float = 0.0,
    ):
        super().__init__(ops.NO_LAYER if layer is None else layer.facts)
        self.spec = spec
        self.prefix = prefix
        self.drop_rate = drop_rate
        self.act_name = _ACTIVATIONS[spec.activation]

    def _name(self, part: str) -> str:
        return f"{self.prefix}_{part}"

    def _bn(self, x, name: str):
        return keras.layers.BatchNormalization(
            momentum=self.spec.batch_norm_momentum,
            epsilon=self.spec.batch_norm_epsilon,
            name=name,
        )(x)

    def conv_bn(self, x, part, width, kernel, stride, act=True):
        conv, bn, act_name = conv_names(self.prefix, part)
        x = keras.layers.Conv2D(
            width,
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer=_conv_init(),
            name=conv,
        )(x)
        x = self._bn(x, bn)
        return keras.layers.Activation(self.act_name, name=act_name)(x) if act else x

    def depthwise_bn_act(self, x, kernel, stride):
        conv, bn, act_name = depthwise_names(self.prefix)
        x = keras.layers.DepthwiseConv2D(
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            depthwise_initializer=_conv_init(),
            name=conv,
        )(x)
        x = self._bn(x, bn)
        return keras.layers.Activation(self.act_name, name=act_name)(x)

    def global_pool(self, x, part):
        return keras.layers.GlobalAveragePooling2D(
            keepdims=True, name=self._name(part)
        )(x)

    def conv_bias(self, x, part, width):
        return keras.layers.Conv2D(
            width,
            1,
            padding="same",
            use_bias=True,
            kernel_initializer=_conv_init(),
            name=self._name(part),
        )(x)

    def activation(self, x, part):
        return keras.layers.Activation(self.act_name, name=self._name(part))(x)

    def sigmoid(self, x, part):
        return keras.layers.Activation("sigmoid", name=self._name(part))(x)

    def multiply(self, x, gate, part):
        return keras.layers.Multiply(name=self._name(part))([x, gate])

    def avg_pool(self, x, stride, part):
        return keras.layers.AveragePooling2D(
            stride, stride, padding="same", name=self._name(part)
        )(x)

    def add(self, y, shortcut):
        if self.drop_rate > 0:
            # Drop connect (stochastic depth): drops the whole residual branch.
            y = keras.layers.Dropout(
                self.drop_rate, noise_shape=(None, 1, 1, 1), name=self._name("drop")
            )(y)
        return keras.layers.Add(name=self._name("add"))([y, shortcut])


def build_layer(spec: ArchSpec, inputs, layer: LayerPlan, drop_rate: float = 0.0):
    """Keras layers of one searchable layer of ``spec`` applied to ``inputs``."""
    p = KerasPrimitives(spec, layer.name, layer, drop_rate)
    return ops.apply_layer(
        p, inputs, layer.block.conv_op, layer.op_args, layer.block.skip
    )


def build_model(
    spec: ArchSpec,
    input_shape: tuple[int, int, int] | None = None,
    num_classes: int = 1000,
    dropout_rate: float | None = None,
    classifier_activation: str | None = "softmax",
    name: str | None = None,
) -> keras.Model:
    """Builds ``spec`` as a Keras functional model.

    Args:
      spec: the architecture.
      input_shape: (height, width, channels); defaults to the spec's resolution.
      num_classes: classifier width.
      dropout_rate: overrides the spec's dropout before the classifier.
      classifier_activation: ``"softmax"`` (like keras.applications) or ``None``
        for logits.
    """
    if input_shape is None:
        input_shape = (spec.resolution, spec.resolution, 3)
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape}"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    stem = KerasPrimitives(spec, "stem")
    x = stem.conv_bn(inputs, "", spec.scaled_stem_filters(), 3, 2)
    layers = plan_layers(spec, (input_shape[0], input_shape[1]))
    for layer in layers:
        drop = spec.drop_connect_rate * layer.global_index / len(layers)
        x = build_layer(spec, x, layer, drop)
    x = KerasPrimitives(spec, "head").conv_bn(x, "", spec.scaled_head_filters(), 1, 1)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    rate = spec.dropout_rate if dropout_rate is None else dropout_rate
    if rate > 0:
        x = keras.layers.Dropout(rate, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_initializer=keras.initializers.VarianceScaling(
            1.0 / 3.0, "fan_out", "uniform"
        ),
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=name or spec.name.replace("/", "_"))
