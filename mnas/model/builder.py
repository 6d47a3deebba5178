"""Builds a Keras functional model from an ``ArchSpec``.

Layer names are deterministic (``stem_conv``, ``block3_layer1_dwconv``,
``head_conv``...), so weights can be mapped by name. The graph is
inference-friendly: every conv is followed by batch norm (folded by the TFLite
converter) and a plain activation layer (fused into the conv).
"""

from __future__ import annotations

import keras

from mnas.model.plan import LayerPlan, plan_layers
from mnas.search_space import ArchSpec

_ACTIVATIONS = {"relu": "relu", "relu6": "relu6", "swish": "swish"}


def _conv_init() -> keras.initializers.Initializer:
    # Official MnasNet/EfficientNet: fan-out scaled normal.
    return keras.initializers.VarianceScaling(2.0, "fan_out", "truncated_normal")


class _Ops:
    """Small factory so every conv/bn/activation gets consistent settings."""

    def __init__(self, spec: ArchSpec):
        self.spec = spec
        self.activation = _ACTIVATIONS[spec.activation]

    def conv(self, x, filters: int, kernel: int, stride: int, name: str, bias=False):
        return keras.layers.Conv2D(
            filters,
            kernel,
            strides=stride,
            padding="same",
            use_bias=bias,
            kernel_initializer=_conv_init(),
            name=name,
        )(x)

    def depthwise(self, x, kernel: int, stride: int, name: str):
        return keras.layers.DepthwiseConv2D(
            kernel,
            strides=stride,
            padding="same",
            use_bias=False,
            depthwise_initializer=_conv_init(),
            name=name,
        )(x)

    def bn(self, x, name: str):
        return keras.layers.BatchNormalization(
            momentum=self.spec.batch_norm_momentum,
            epsilon=self.spec.batch_norm_epsilon,
            name=name,
        )(x)

    def act(self, x, name: str):
        return keras.layers.Activation(self.activation, name=name)(x)

    def conv_bn_act(self, x, filters, kernel, stride, prefix: str, act: bool = True):
        x = self.conv(x, filters, kernel, stride, f"{prefix}_conv")
        x = self.bn(x, f"{prefix}_bn")
        return self.act(x, f"{prefix}_act") if act else x


def _squeeze_excite(ops: _Ops, x, layer: LayerPlan, channels: int, name: str):
    s = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_squeeze")(x)
    s = ops.conv(s, layer.se_filters, 1, 1, f"{name}_se_reduce", bias=True)
    s = ops.act(s, f"{name}_se_act")
    s = ops.conv(s, channels, 1, 1, f"{name}_se_expand", bias=True)
    s = keras.layers.Activation("sigmoid", name=f"{name}_se_gate")(s)
    return keras.layers.Multiply(name=f"{name}_se_excite")([x, s])


def _layer(ops: _Ops, inputs, layer: LayerPlan, drop_rate: float):
    block, name = layer.block, layer.name
    x = inputs
    if block.conv_op == "conv":
        x = ops.conv_bn_act(
            x, layer.output_filters, block.kernel_size, layer.stride, name
        )
        if block.has_se:
            x = _squeeze_excite(ops, x, layer, layer.output_filters, name)
    else:
        if block.conv_op == "mbconv" and block.expand_ratio != 1:
            x = ops.conv_bn_act(x, layer.expanded_filters, 1, 1, f"{name}_expand")
        x = ops.depthwise(x, block.kernel_size, layer.stride, f"{name}_dwconv")
        x = ops.bn(x, f"{name}_dw_bn")
        x = ops.act(x, f"{name}_dw_act")
        if block.has_se:
            x = _squeeze_excite(ops, x, layer, layer.expanded_filters, name)
        # MBConv's projection is linear; a depthwise-separable conv keeps its act.
        x = ops.conv_bn_act(
            x,
            layer.output_filters,
            1,
            1,
            f"{name}_project",
            act=block.conv_op == "dsconv",
        )
    if layer.has_identity_skip:
        shortcut = inputs
    elif layer.has_pool_skip:
        shortcut = inputs
        if layer.stride > 1:
            shortcut = keras.layers.AveragePooling2D(
                layer.stride, layer.stride, padding="same", name=f"{name}_skip_pool"
            )(shortcut)
        if layer.pool_skip_projects:
            shortcut = ops.conv(
                shortcut, layer.output_filters, 1, 1, f"{name}_skip_conv"
            )
            shortcut = ops.bn(shortcut, f"{name}_skip_bn")
    else:
        return x
    if drop_rate > 0:
        # Drop connect (stochastic depth): drops the whole residual branch.
        x = keras.layers.Dropout(
            drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop"
        )(x)
    return keras.layers.Add(name=f"{name}_add")([x, shortcut])


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
    ops = _Ops(spec)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = ops.conv_bn_act(inputs, spec.scaled_stem_filters(), 3, 2, "stem")
    layers = plan_layers(spec, (input_shape[0], input_shape[1]))
    for layer in layers:
        drop = spec.drop_connect_rate * layer.global_index / len(layers)
        x = _layer(ops, x, layer, drop)
    x = ops.conv_bn_act(x, spec.scaled_head_filters(), 1, 1, "head")
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
