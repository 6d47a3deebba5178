"""Does the shared supernet learn? Weight steps of ``SharedWeights`` alone.

Each variant builds the supernet of ``--evaluation=shared`` (``SharedWeights``,
default ``SharedConfig`` except where the variant says) on the embedded
digits and takes ``--steps`` weight steps, one per path, as the search does
(``SharedWeights.step``: a training batch, then the path's accuracy on one
held-out batch). Paths are drawn uniformly (seeded), or one path is kept
(``fixed``), or two alternate (``two_paths``), or the first path is kept
but the decisions of one kind are drawn anew (``vary_<kind>``, e.g.
``vary_filters``), or paths are drawn uniformly but the decisions of one kind
are kept as in the first path (``keep_<kind>``, e.g. ``keep_conv_op``), or
paths are drawn uniformly but every decision of one kind takes one choice
(``pin_<kind>=<choice>``, e.g. ``pin_skip=identity``). ``--search_space``
picks the space (default ``mnasnet``).
Printed every ``--every`` steps: the mean training loss and held-out accuracy
of those steps; at the end, five random paths scored on the whole held-out
split.

Variants are joined with ``+``: ``zero_classifier`` (zero the classifier's
kernel and bias first, as the standalone proxy does; ``SharedWeights`` does
it itself since 2026-12-01, so the variant now changes nothing and stays for
the recorded commands), ``fixed`` (one path),
``warmups`` (ops and filters warm-ups over 0.3 of the steps),
``per_variable_adam`` (Adam bias correction counted per variable instead of
over all steps); ``as_built`` changes nothing.

  python benchmarks/shared_learning.py --steps 300 \\
      --variants as_built,zero_classifier,zero_classifier+fixed
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

import numpy as np

KNOWN = {
    "as_built",
    "zero_classifier",
    "fixed",
    "two_paths",
    "warmups",
    "per_variable_adam",
}


def _per_variable_adam(optimizer) -> None:
    """Replaces ``LazyAdam.apply`` by one that counts each variable's own
    steps for the bias correction (each op as if trained alone)."""
    import tensorflow as tf

    from mnas.search.shared.optimizer import _handle

    counts = [tf.Variable(0.0, trainable=False) for _ in optimizer.m]

    def apply(gradients, variables, learning_rate):
        rate = tf.constant(learning_rate, tf.float32)
        for gradient, variable in zip(gradients, variables, strict=True):
            if gradient is None:
                continue
            i = optimizer._index[id(variable)]
            counts[i].assign_add(1.0)
            tf.raw_ops.ResourceApplyAdam(
                var=_handle(variable),
                m=optimizer.m[i].handle,
                v=optimizer.v[i].handle,
                beta1_power=tf.pow(optimizer.beta_1, counts[i]),
                beta2_power=tf.pow(optimizer.beta_2, counts[i]),
                lr=rate,
                beta1=optimizer.beta_1,
                beta2=optimizer.beta_2,
                epsilon=optimizer.epsilon,
                grad=gradient,
            )

    optimizer.apply = apply


def run(variant: str, args) -> list[tuple]:
    import keras

    from mnas.search.shared.config import SharedConfig
    from mnas.search.shared.weights import SharedWeights
    from mnas.search_space import get_search_space
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    parts = set(variant.split("+"))
    varied = {p.removeprefix("vary_") for p in parts if p.startswith("vary_")}
    kept = {p.removeprefix("keep_") for p in parts if p.startswith("keep_")}
    parts -= {f"vary_{kind}" for kind in varied} | {f"keep_{kind}" for kind in kept}
    pinned = dict(p.removeprefix("pin_").split("=", 1) for p in parts if "=" in p)
    parts -= {f"pin_{kind}={label}" for kind, label in pinned.items()}
    unknown = parts - KNOWN
    if unknown:
        raise SystemExit(f"unknown variant part(s) {sorted(unknown)}; known {KNOWN}")
    extra = {"ops_warmup": 0.3, "filters_warmup": 0.3} if "warmups" in parts else {}
    config = SharedConfig(
        resolution=args.resolution, learning_rate=args.learning_rate, **extra
    )
    weights = SharedWeights(
        get_search_space(args.search_space),
        load_proxy_data(DataConfig()),
        config,
        args.steps,
        seed=args.seed,
    )
    if "zero_classifier" in parts:
        for variable in weights.net.classifier.weights:
            variable.assign(keras.ops.zeros_like(variable))
    if "per_variable_adam" in parts:
        _per_variable_adam(weights.optimizer)
    rng = np.random.default_rng(args.seed)

    def pin(decision, action: int) -> int:
        if decision.kind not in pinned:
            return action
        if pinned[decision.kind] not in decision.choices:
            raise SystemExit(
                f"pin_{decision.kind}={pinned[decision.kind]}: not a choice of "
                f"{decision.name} {decision.choices}"
            )
        return decision.choices.index(pinned[decision.kind])

    def draw():
        return [pin(d, int(rng.integers(d.num_choices))) for d in weights.decisions]

    fixed, second = draw(), draw()

    def path(step):
        if varied:  # the first path, but these decision kinds drawn anew
            return [
                int(rng.integers(d.num_choices)) if d.kind in varied else a
                for d, a in zip(weights.decisions, fixed, strict=True)
            ]
        if kept:  # uniform paths, but these decision kinds as in the first
            return [
                a if d.kind in kept else int(rng.integers(d.num_choices))
                for d, a in zip(weights.decisions, fixed, strict=True)
            ]
        if "fixed" in parts:
            return fixed
        if "two_paths" in parts:
            return (fixed, second)[step % 2]
        return draw()

    rows, window, started = [], [], time.time()
    for step in range(args.steps):
        result = weights.step(step, path(step))
        window.append((result.loss, result.accuracy))
        if (step + 1) % args.every == 0:
            loss = float(np.mean([w[0] for w in window]))
            accuracy = float(np.mean([w[1] for w in window]))
            rows.append((variant, step + 1, loss, accuracy, time.time() - started))
            print(f"{variant} step {step + 1}: loss {loss:.3f} acc {accuracy:.3f}")
            window = []
    scores = [weights.score(draw()) for _ in range(5)]
    print(f"{variant}: five random paths, whole held-out split: {scores}")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="as_built,zero_classifier")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=0.005)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search_space", default="mnasnet")
    args = parser.parse_args(argv)
    rows = []
    for variant in args.variants.split(","):
        rows += run(variant, args)
    print(
        "\n| variant | steps | mean training loss | mean held-out accuracy | wall s |"
    )
    print("|---|---|---|---|---|")
    for variant, step, loss, accuracy, wall in rows:
        print(f"| {variant} | {step} | {loss:.3f} | {accuracy:.3f} | {wall:.0f} |")
    print(f"\nload average: {os.getloadavg()}")
    print("command:", shlex.join([sys.executable, *sys.argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
