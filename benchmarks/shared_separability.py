"""Where does a shared supernet lose the classes? Two probes of ``SharedWeights``.

``--probe layers``: after ``--steps`` weight steps on uniformly drawn paths
(seeded), five other random paths run one held-out batch of 256 images, and
after the stem and every layer that exists the features are pooled over space
and scored by their class separability: the share of their variance that lies
between the class means (about 9/255 = 0.035 for features that carry no class
at all; the raw pixels score 0.47).

``--probe neighbours``: one random path is trained alone for ``--steps``
steps, then every path that differs from it in one decision is scored on the
whole held-out split with the same weights, untrained. A decision whose
neighbours keep the accuracy shares its learning between its choices.

  python benchmarks/shared_separability.py --probe layers --steps 400
  python benchmarks/shared_separability.py --probe neighbours --steps 150
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np


def separability(features: np.ndarray, labels: np.ndarray) -> float:
    """Between-class share of the variance of ``features`` (pooled over space
    when they are maps)."""
    if features.ndim == 4:
        features = features.mean((1, 2))
    mean = features.mean(0)
    total = ((features - mean) ** 2).sum()
    between = sum(
        (labels == c).sum() * ((features[labels == c].mean(0) - mean) ** 2).sum()
        for c in np.unique(labels)
    )
    return float(between / total)


def _weights(args, eval_batch_size: int, num_trials: int):
    from mnas.search.shared.config import SharedConfig
    from mnas.search.shared.weights import SharedWeights
    from mnas.search_space import get_search_space
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    config = SharedConfig(resolution=args.resolution, eval_batch_size=eval_batch_size)
    return SharedWeights(
        get_search_space(args.search_space),
        load_proxy_data(DataConfig()),
        config,
        num_trials,
        seed=args.seed,
    )


def probe_layers(args) -> None:
    import tensorflow as tf

    from mnas.model.supernet import BATCH_STATS, _Masks

    weights = _weights(args, 256, max(args.steps, 1))
    net = weights.net
    rng = np.random.default_rng(args.seed)
    for step in range(args.steps):
        path = [int(rng.integers(d.num_choices)) for d in weights.decisions]
        weights.step(step, path, score=False)
    images, labels = weights.held_out_batch(0)
    probe_rng = np.random.default_rng(7)
    pixels = images.reshape(len(images), -1)  # not pooled: the raw input
    print(f"pixels {separability(pixels, labels):.2f}")
    for _ in range(5):
        actions = [int(probe_rng.integers(d.num_choices)) for d in weights.decisions]
        masks = _Masks(net.path_weights(actions))
        x = tf.nn.conv2d(images, net.stem_kernel, 2, "SAME")
        x = net.activation(net.stem_bn(x, training=BATCH_STATS))
        row = [f"stem {separability(x.numpy(), labels):.2f}"]
        for slot, layer in zip(net.slots, net.searchable):
            y = layer.call(x, masks, BATCH_STATS, True)
            if y is x:  # the path drops this layer
                continue
            x = y
            row.append(
                f"b{slot.block}.{slot.slot}@{x.shape[1]}px "
                f"{separability(x.numpy(), labels):.2f}"
            )
        x = tf.nn.conv2d(x, net.head_kernel, 1, "SAME")
        x = net.activation(net.head_bn(x, training=BATCH_STATS))
        row.append(f"head {separability(x.numpy(), labels):.2f}")
        print(" | ".join(row))


def probe_neighbours(args) -> None:
    weights = _weights(args, 64, args.steps)
    rng = np.random.default_rng(args.seed)
    fixed = [int(rng.integers(d.num_choices)) for d in weights.decisions]
    for step in range(args.steps):
        weights.step(step, fixed, score=False)
    print(f"the trained path: {weights.score(fixed):.3f} held-out")
    by_kind: dict[str, list[float]] = {}
    for i, decision in enumerate(weights.decisions):
        for action in range(decision.num_choices):
            if action == fixed[i]:
                continue
            other = list(fixed)
            other[i] = action
            accuracy = weights.score(other)
            by_kind.setdefault(decision.kind, []).append(accuracy)
            print(
                f"{decision.name}: {decision.choices[fixed[i]]} -> "
                f"{decision.choices[action]}: {accuracy:.3f}"
            )
    print("\n| decision kind | neighbours | mean held-out | lowest |")
    print("|---|---|---|---|")
    for kind, accuracies in by_kind.items():
        print(
            f"| {kind} | {len(accuracies)} | {np.mean(accuracies):.3f} | "
            f"{np.min(accuracies):.3f} |"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probe", choices=("layers", "neighbours"), required=True)
    parser.add_argument("--steps", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--search_space", default="mnasnet")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.time()
    (probe_layers if args.probe == "layers" else probe_neighbours)(args)
    print(f"\n{time.time() - started:.0f} s; load average {os.getloadavg()}")
    print("command:", shlex.join([sys.executable, *sys.argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
