"""mnas-dnas's flags -> DnasConfig, under their renamed names."""

import pytest

from mnas.dnas.loop import DnasConfig
from mnas.flags.dnas import RENAMED, define_dnas_flags, dnas_config_from_flags


def test_flags_make_the_config(parse, tmp_path):
    flag_values = parse(
        define_dnas_flags,
        f"--work_dir={tmp_path}",
        "--loss=proxyless",
        "--proxyless_lambda=0.5",
        "--proxyless_target_ms=9",
        "--fbnet_alpha=0.3",
        "--fbnet_beta=2",
        "--sharing=layer",
        "--search_epochs=3",
        "--search_warmup_epochs=0",
        "--initial_temperature=2",
        "--final_temperature=0.4",
        "--search_batch_size=16",
        "--theta_fraction=0.25",
        "--weight_optimizer=sgd",
        "--weight_learning_rate=0.05",
        "--theta_learning_rate=0.3",
        "--lut=/t/{backend}-{space}.jsonl",
        "--lut_calibrated",
        "--proxy_resolution=24",
        "--proxy_epochs=2",
        "--seed=3",
    )
    config = dnas_config_from_flags(flag_values)
    assert config == DnasConfig(
        work_dir=str(tmp_path),
        sharing="layer",
        loss="proxyless",
        alpha=0.3,
        beta=2.0,
        lam=0.5,
        target_ms=9.0,
        epochs=3,
        warmup_epochs=0,
        initial_temperature=2.0,
        final_temperature=0.4,
        batch_size=16,
        theta_fraction=0.25,
        weight_optimizer="sgd",
        weight_learning_rate=0.05,
        theta_learning_rate=0.3,
        data={
            "dataset": "digits",
            "data_dir": None,
            "manual_dir": None,
            "resolution": 24,
            "validation_fraction": 0.2,
            "max_train_examples": None,
            "seed": 3,
        },
        trainer={"epochs": 2},
        lut_path="/t/host-mnasnet.jsonl",
        lut_calibrated=True,
        seed=3,
    )
    assert config.pressure == 0.5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fbnet_beta=nan"], "--fbnet_beta must be a finite number, got nan"),
        (["--search_epochs=0"], "--search_epochs must be >= 1, got 0"),
        (["--search_batch_size=0"], "--search_batch_size must be >= 1, got 0"),
        (
            ["--search_epochs=2", "--search_warmup_epochs=2"],
            "--search_warmup_epochs must be <= 1, got 2",
        ),
        (["--search_warmup_epochs=-1"], "--search_warmup_epochs must be >= 0, got -1"),
        (["--fbnet_beta=-1"], "--fbnet_beta must be >= 0, got -1.0"),
        (["--fbnet_alpha=0"], "--fbnet_alpha must be > 0, got 0.0"),
        (["--proxyless_target_ms=-7"], "--proxyless_target_ms must be > 0, got -7.0"),
        (["--steps_per_epoch=0"], "--steps_per_epoch must be > 0, got 0"),
        (
            ["--initial_temperature=2", "--final_temperature=3"],
            "--final_temperature must be <= 2.0, got 3.0",
        ),
        (["--theta_fraction=0"], "--theta_fraction must be in (0, 1), got 0.0"),
    ],
)  # fmt: skip
def test_bad_dnas_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        dnas_config_from_flags(parse(define_dnas_flags, *args))
    assert str(info.value) == message


def test_retired_names_point_to_the_new_ones(parse):
    flag_values = parse(define_dnas_flags)
    assert set(RENAMED).isdisjoint(flag_values)
    assert set(RENAMED.values()) <= set(flag_values)
