"""Weight-only training of a supernet: the cross-entropy, batch accuracy and
largest |logit| of each step, under one or more optimizer settings.

Shows why the supernet's weights did not learn (SGD at 0.05) or blew up
(Adam at 0.01 with the builder's 1000-class classifier init) in a short run:

    .venv/bin/python benchmarks/dnas_weight_steps.py tiny 45 adam:0.01:n sgd:0.05:n
    .venv/bin/python benchmarks/dnas_weight_steps.py mid 45 adam:0.01:n adam:0.01:z

Spaces: ``tiny`` (mnas.testing.dnas.TINY_SPACE), ``mid`` (MnasNet's seven
blocks with one layer each), ``mnasnet``. Each setting is
``optimizer:learning_rate:classifier`` with classifier ``z`` (zeroed, as
``mnas-dnas`` does) or ``n`` (as built). Weights follow the search's schedule
(``mnas.dnas.loop``: one warm-up epoch of 15 steps, then cosine over 6 epochs),
batch 64 from the search's weight split, Gumbel samples of uniform θ at τ = 5.
"""

from __future__ import annotations

import dataclasses
import sys
import time


def main() -> int:
    import keras
    import numpy as np
    import tensorflow as tf

    from mnas.dnas.loop import DnasConfig, _weight_optimizer, split_train
    from mnas.model.supernet import build_supernet
    from mnas.search_space import MNASNET_SPACE
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    which, steps = sys.argv[1], int(sys.argv[2])
    if which == "tiny":
        from mnas.testing.dnas import TINY_SPACE

        space = TINY_SPACE
    elif which == "mid":
        space = dataclasses.replace(
            MNASNET_SPACE,
            name="mid",
            skeleton=tuple(
                dataclasses.replace(b, num_repeat=1) for b in MNASNET_SPACE.skeleton
            ),
        )
    else:
        space = MNASNET_SPACE
    data = load_proxy_data(DataConfig())
    split = split_train(data, 0.3, 0)
    for setting in sys.argv[3:]:
        name, rate, classifier = setting.split(":")
        keras.utils.set_random_seed(0)
        net = build_supernet(space, "block", data.image_shape, data.num_classes)
        if classifier == "z":
            for weight in net.classifier.weights:
                weight.assign(tf.zeros_like(weight))
        variables = net.weight_variables
        config = DnasConfig(
            work_dir="-", weight_optimizer=name, weight_learning_rate=float(rate)
        )
        optimizer = _weight_optimizer(config, 15)
        optimizer.build(variables)
        generator = tf.random.Generator.from_seed(0)
        net.temperature.assign(5.0)

        @tf.function(autograph=False, reduce_retracing=True)
        def step(x, y, net=net, variables=variables, optimizer=optimizer, g=generator):
            with tf.GradientTape() as tape:
                logits = net(
                    x, training=True, arch_weights=net.arch_weights(generator=g)
                )
                ce = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
                )
            optimizer.apply_gradients(zip(tape.gradient(ce, variables), variables))
            hits = tf.cast(tf.equal(tf.argmax(logits, -1), y), tf.float32)
            return ce, tf.reduce_mean(hits), tf.reduce_max(tf.abs(logits))

        rng = np.random.default_rng(0)
        start = time.perf_counter()
        rows = []
        for _ in range(steps):
            idx = rng.choice(len(split.w_labels), 64, replace=False)
            rows.append(
                [float(v) for v in step(split.w_images[idx], split.w_labels[idx])]
            )
        print(f"{which} {setting}: {time.perf_counter() - start:.0f} s", flush=True)
        for label, column, digits in (
            ("ce", 0, 2),
            ("acc", 1, 2),
            ("max|logit|", 2, 1),
        ):
            print(f"  {label}", [round(r[column], digits) for r in rows], flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
