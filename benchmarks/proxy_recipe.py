"""Proxy recipe experiments: train architectures under given data/trainer
settings and append one JSON line per training (the ablations of
docs/proxy.md).

    .venv/bin/python benchmarks/proxy_recipe.py TAG ARCHS CONFIGS [--out=F]

ARCHS is a comma-separated list of presets, sample indices (``3`` is
``MNASNET_SPACE.decode(MNASNET_SPACE.sample(3))``) and ``plain-cnn`` (three
conv-BN-ReLU-maxpool stages of 32/64/128 filters: a reference that is not a
MnasNet); CONFIGS a JSON list of
``{"name", "data": DataConfig kwargs, "trainer": TrainerConfig kwargs,
"seed", "both_eval"}`` (``both_eval`` also scores after re-estimating the
batch-norm statistics on 512 training images). Each record holds the
held-out accuracy, the training accuracy per epoch (``hist``), build and
training wall seconds, process CPU seconds and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time


def plain_cnn(image_shape, num_classes):
    import keras

    inputs = keras.Input(image_shape)
    x = inputs
    for filters in (32, 64, 128):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.MaxPooling2D()(keras.layers.ReLU()(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tag")
    parser.add_argument("archs")
    parser.add_argument("configs")
    parser.add_argument("--out", default="runs/proxy_recipe.jsonl")
    args = parser.parse_args()

    import keras

    from mnas.model.builder import build_model
    from mnas.search_space import MNASNET_SPACE, get_preset
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig
    from mnas.train.proxy import (
        TrainingDivergedError,
        evaluate,
        recalibrate_batch_norm,
        train_and_evaluate,
    )
    from mnas.train.proxy_config import TrainerConfig

    archs = [int(a) if a.isdigit() else a for a in args.archs.split(",")]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    data_key, data = None, None
    for config in json.loads(args.configs):
        key = json.dumps(config.get("data", {}), sort_keys=True)
        if key != data_key:
            data_key, data = key, load_proxy_data(DataConfig(**config.get("data", {})))
        for arch in archs:
            seed = config.get("seed", 0)
            keras.utils.set_random_seed(seed)
            cpu, wall = time.process_time(), time.perf_counter()
            if arch == "plain-cnn":
                name, model = arch, plain_cnn(data.image_shape, data.num_classes)
            else:
                if isinstance(arch, int):
                    spec = MNASNET_SPACE.decode(MNASNET_SPACE.sample(arch))
                    name = f"s{arch}"
                else:
                    spec, name = get_preset(arch), arch
                model = build_model(spec, data.image_shape, data.num_classes)
            build_s = time.perf_counter() - wall
            trainer = TrainerConfig(**{**config.get("trainer", {}), "seed": seed})
            record = {"tag": args.tag, "cfg": config.get("name"), "arch": name}
            try:
                result = train_and_evaluate(model, data, trainer)
                record["acc"] = round(result.accuracy, 4)
                record["hist"] = [round(h.accuracy, 3) for h in result.history]
                record["train_s"] = round(result.wall_time_s, 1)
                if config.get("both_eval"):
                    recalibrate_batch_norm(model, data.representative_images(512))
                    record["acc_recal"] = round(evaluate(model, data, model.loss)[1], 4)
            except TrainingDivergedError as failure:
                record["acc"], record["error"] = float("nan"), str(failure)
            record["build_s"] = round(build_s, 1)
            record["cpu_s"] = round(time.process_time() - cpu, 1)
            record["load"] = os.getloadavg()[0]
            print(json.dumps(record), flush=True)
            with open(args.out, "a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            keras.backend.clear_session()


if __name__ == "__main__":
    main()
