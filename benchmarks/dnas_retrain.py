"""Retrains the architecture a differentiable search derived, standalone,
with the proxy trainer, and prints its held-out accuracy on the proxy task.

``mnas-dnas`` already trains its derived network with the proxy trainer's
defaults (``--proxy_epochs``); this retrains the ``best.json`` of one or
more work directories under a stated recipe and seeds, so the accuracy does
not rest on one training run:

    .venv/bin/python benchmarks/dnas_retrain.py runs/dnas-default \
        --recipe=adam --seeds=0,1

``--recipe=defaults`` uses ``TrainerConfig()`` and ``DataConfig()`` as they
are (what ``mnas-dnas`` trains its derived network with); ``--recipe=adam``
passes the proxy recipe's core explicitly (Adam at 0.01, cosine with one
warm-up epoch, batch 64, 6 epochs) and keeps augmentation, label smoothing
0.1 and weight decay 1e-5 (the trainer's defaults before docs/proxy.md's
recipe); ``--recipe=adam-plain`` drops those three as well.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

RECIPES = {
    "defaults": ({}, {}),
    "adam": (
        {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "epochs": 6,
            "warmup_epochs": 1,
            "label_smoothing": 0.1,
            "weight_decay": 1e-5,
        },
        {"batch_size": 64, "augment": True},
    ),
    "adam-plain": (
        {
            "optimizer": "adam",
            "learning_rate": 0.01,
            "epochs": 6,
            "warmup_epochs": 1,
            "label_smoothing": 0.0,
            "weight_decay": 0.0,
        },
        {"batch_size": 64, "augment": False},
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("work_dirs", nargs="+")
    parser.add_argument("--recipe", default="adam", choices=sorted(RECIPES))
    parser.add_argument("--seeds", default="0")
    args = parser.parse_args()

    import keras

    from mnas.flags.arch import load_arch
    from mnas.model.builder import build_model
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig
    from mnas.train.proxy import train_and_evaluate
    from mnas.train.proxy_config import TrainerConfig

    trainer_kwargs, data_kwargs = RECIPES[args.recipe]
    data = load_proxy_data(DataConfig(**data_kwargs))
    for work_dir in args.work_dirs:
        spec = load_arch(os.path.join(work_dir, "best.json"))
        accuracies = []
        for seed in (int(s) for s in args.seeds.split(",")):
            keras.utils.set_random_seed(seed)
            model = build_model(spec, data.image_shape, data.num_classes)
            config = TrainerConfig(**{**trainer_kwargs, "seed": seed})
            start = time.perf_counter()
            result = train_and_evaluate(model, data, config)
            seconds = time.perf_counter() - start
            accuracies.append(result.accuracy)
            print(
                f"{work_dir}: seed {seed}: held-out accuracy {result.accuracy:.4f} "
                f"({result.steps} steps, {seconds:.0f} s)",
                flush=True,
            )
        print(
            f"{work_dir}: {args.recipe} recipe, min {min(accuracies):.4f} over "
            f"{len(accuracies)} seed(s); blocks {' '.join(spec.block_strings)}"
        )
    print("\ncommand: " + shlex.join([os.path.relpath(sys.executable), *sys.argv]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
