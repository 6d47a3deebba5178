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
