"""Full training: the official schedule, real steps on digits, resume, EMA out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnas.model.builder import build_model
from mnas.model.weights import load_weights
from mnas.search_space import parse_arch
from mnas.train.full import OfficialSchedule, averaged_variables, train
from mnas.train.full_config import FullTrainingConfig, FullTrainingConfigError

ARCH = "r1_k3_s11_e1_i16_o16_noskip,r1_k3_s22_e3_i16_o24_se0.25"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("epochs", 0, "training epochs must be an integer in [1, 10000], got 0"),
        (
            "warmup_epochs",
            float("nan"),
            "training warmup_epochs must be a number in [0, 10000], got nan",
        ),
        (
            "lr_decay_rate",
            1.5,
            "training lr_decay_rate must be a number in (0, 1], got 1.5",
        ),
        (
            "dropout_rate",
            "0.2",
            "training dropout_rate must be a number in [0, 1) or None, got '0.2'",
        ),
        (
            "resolution",
            4,
            "training resolution must be an integer in [8, 2048] or None, got 4",
        ),
        (
            "strategy",
            "gpu",
            "training strategy must be one of ('default', 'mirrored', 'tpu'), "
            "got 'gpu'",
        ),
    ],
)
def test_an_out_of_range_setting_is_refused_by_name(field, value, message) -> None:
    with pytest.raises(FullTrainingConfigError) as info:
        FullTrainingConfig(**{field: value})
    assert str(info.value) == message


def test_defaults_are_the_official_recipe() -> None:
    config = FullTrainingConfig()
    assert (config.epochs, config.batch_size, config.learning_rate) == (
        350,
        1024,
        0.064,
    )
    assert (config.rmsprop_decay, config.momentum, config.epsilon) == (0.9, 0.9, 1e-3)
    assert (config.weight_decay, config.label_smoothing) == (1e-5, 0.1)
    assert config.moving_average_decay == 0.9999


def test_schedule_warms_up_then_decays_every_2_4_epochs() -> None:
    schedule = OfficialSchedule(0.064, 100, 5, 0.97, 2.4)
    rates = [float(schedule(step)) for step in (0, 250, 499, 500, 719, 720, 1440)]
    expected = [0.0, 0.032, 0.064 * 499 / 500, 0.064 * 0.97**2, 0.064 * 0.97**2]
    expected += [0.064 * 0.97**3, 0.064 * 0.97**6]
    np.testing.assert_allclose(rates, expected, rtol=1e-6)


def _config(**changes) -> FullTrainingConfig:
    base = dict(
        epochs=1,
        batch_size=32,
        warmup_epochs=0.5,
        resolution=16,
        max_steps_per_epoch=3,
        moving_average_decay=0.9,
    )
    base.update(changes)
    return FullTrainingConfig(**base)


def test_trains_resumes_and_saves_moving_averages(tmp_path) -> None:
    spec = parse_arch(ARCH).replace(stem_filters=16)
    logs: list[str] = []
    first = train(spec, _config(), str(tmp_path), logs.append)
    assert (first.start_epoch, first.epochs, first.steps) == (0, 1, 3)
    assert "epoch 1/1" in logs[0]

    second = train(spec, _config(epochs=2), str(tmp_path), logs.append)
    assert (second.start_epoch, second.epochs, second.steps) == (1, 2, 6)
    assert any("resumed from" in line and "(epoch 1)" in line for line in logs)
    assert [e.epoch for e in second.history] == [2]
    assert np.isfinite(second.history[0].loss)
    assert 0.0 <= second.accuracy <= 1.0

    record = json.loads((tmp_path / "config.json").read_text())
    assert record["training"]["epochs"] == 2
    assert record["arch"]["blocks"] == list(spec.block_strings)
    model, meta = load_weights(second.weights_dir)
    assert meta.extra["epochs"] == 2 and meta.preprocessing == "mnas"
    assert model.input_shape == (None, 16, 16, 3)

    with pytest.raises(ValueError, match=r"training.batch_size: saved 32, now 16"):
        train(spec, _config(epochs=3, batch_size=16), str(tmp_path), logs.append)


def test_streams_an_image_folder_with_official_augmentation(tmp_path) -> None:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(4):
            pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
            data = tf.io.encode_jpeg(pixels).numpy()
            (tmp_path / "images" / name / f"{i}.jpg").write_bytes(data)
    spec = parse_arch(ARCH).replace(stem_filters=16)
    config = _config(dataset=f"folder:{tmp_path / 'images'}", batch_size=4)
    result = train(spec, config, str(tmp_path / "run"), lambda _: None)
    assert (result.steps, result.accuracy) == (2, None)
    _, meta = load_weights(result.weights_dir)
    assert (meta.num_classes, meta.preprocessing) == (2, "official")


def test_binary_trains_and_resumes(tmp_path) -> None:
    import subprocess
    import sys

    def run(epochs: int):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "mnas.bin.train",
                f"--arch={ARCH}",
                f"--work_dir={tmp_path}",
                f"--epochs={epochs}",
                "--batch_size=32",
                "--resolution=16",
                "--max_steps_per_epoch=2",
                "--strategy=mirrored",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = run(1)
    assert first.returncode == 0, first.stderr
    assert "epoch 1/1" in first.stdout and "2 steps in all" in first.stdout
    second = run(2)
    assert second.returncode == 0, second.stderr
    assert "resumed from" in second.stdout and "4 steps in all" in second.stdout
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["training"]["strategy"] == "mirrored"
    assert (tmp_path / "final" / "weights.json").exists()


def test_moving_averages_cover_what_the_official_code_averages() -> None:
    spec = parse_arch(ARCH).replace(stem_filters=16)
    model = build_model(spec, (16, 16, 3), 10)
    averaged = {v.name for v in averaged_variables(model)}
    trainable = {w.value.name for w in model.trainable_weights}
    statistics = {
        w.value.name
        for w in model.non_trainable_weights
        if w.path.endswith(("moving_mean", "moving_variance"))
    }
    assert statistics and averaged == trainable | statistics
    bn_layers = [layer for layer in model.layers if "bn" in layer.name]
    assert len(statistics) == 2 * len(bn_layers)
