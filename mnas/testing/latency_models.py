"""Tiny models for tests and smoke checks of the latency layer.

They are small enough to convert and time in well under a second on a
shared 2-core machine, yet contain what matters for export checks: batch
norm to fold, ReLU/ReLU6 to fuse, depthwise conv, squeeze-and-excite,
dropout that must vanish at inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def tiny_convnet(
    input_size: int = 32, width: int = 16, num_classes: int = 10, seed: int = 0
) -> keras.Model:
    """Conv-BN-ReLU, depthwise-BN-ReLU6, squeeze-excite, pool, dropout, dense."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 3))
    x = layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
    x = layers.ReLU()(x)
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
    x = layers.ReLU(6.0)(x)
    squeeze = layers.GlobalAveragePooling2D(keepdims=True)(x)
    squeeze = layers.Conv2D(max(1, width // 4), 1, activation="relu")(squeeze)
    squeeze = layers.Conv2D(width, 1, activation="sigmoid")(squeeze)
    x = layers.Multiply()([x, squeeze])
    x = layers.Conv2D(width * 2, 1, use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(num_classes)(x)
    model = keras.Model(inputs, outputs, name="tiny_convnet")
    randomize_batch_norm(model, seed)
    return model


def wide_convnet(input_size: int = 32, width: int = 128, seed: int = 0) -> keras.Model:
    """A conv net whose size is dominated by conv weights (for size ratios)."""
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((input_size, input_size, 3))
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    for _ in range(3):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10)(x)
    model = keras.Model(inputs, outputs, name="wide_convnet")
    randomize_batch_norm(model, seed)
    return model


def randomize_batch_norm(model: keras.Model, seed: int = 0) -> None:
    """Gives batch norm non-trivial statistics so folding errors would show."""
    import keras
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[-1]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.uniform(-0.5, 0.5, n).astype("float32"))
            layer.moving_mean.assign(rng.uniform(-0.5, 0.5, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))


def key_macs(key) -> int:
    """Multiply-adds of one lookup-table key (a rough cost model for fakes)."""
    out_area = key.output_size**2
    if key.kind in ("stem", "head"):
        return key.kernel**2 * key.in_channels * key.out_channels * out_area
    if key.kind == "classifier":
        return key.in_channels * key.out_channels + key.size**2 * key.in_channels
    in_area = key.size**2
    if key.conv_op == "conv":
        macs = key.kernel**2 * key.in_channels * key.out_channels * out_area
        channels = key.out_channels
    else:
        mid = key.expanded_channels
        macs = in_area * key.in_channels * mid if key.expand_ratio != 1 else 0
        macs += key.kernel**2 * mid * out_area + mid * key.out_channels * out_area
        channels = mid
    if key.se_filters:
        macs += 2 * channels * key.se_filters + channels * out_area
    if key.skip == "pool" and key.in_channels != key.out_channels:
        macs += key.in_channels * key.out_channels * out_area
    return macs


def synthetic_table(space=None, num_classes: int = 1000, seed: int = 0):
    """A complete in-memory lookup table for ``space`` with made-up latencies.

    Entries follow multiply-adds (about 30 GMAC/s, 5 us per layer) with 10%
    seeded noise, so predictions are plausible and differ between
    architectures; the fingerprint says ``synthetic`` so it can never pass
    for a measured table.
    """
    import numpy as np

    from mnas.latency.lut.keys import space_keys
    from mnas.latency.lut.table import Entry, LookupTable, TableHeader
    from mnas.latency.result import BackendFingerprint
    from mnas.search_space import MNASNET_SPACE

    space = MNASNET_SPACE if space is None else space
    rng = np.random.default_rng(seed)
    header = TableHeader(
        BackendFingerprint.create("synthetic", "none", "none", 1, "0"),
        space.identity(),
        space.resolution,
        num_classes,
    )
    table = LookupTable(header)
    for key in space_keys(space, num_classes):
        ms = (0.005 + key_macs(key) / 3e7) * float(rng.uniform(0.9, 1.1))
        table.add(key, Entry(ms, 0.95 * ms, 1, 0.0))
    return table
