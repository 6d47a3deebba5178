"""mnas-search's flags -> SearchConfig (today's dict-valued fields)."""

import dataclasses

import pytest

from mnas.flags.search import RENAMED, define_search_flags, search_config_from_flags
from mnas.latency import LatencyConfig
from mnas.search.reward import RewardConfig


def test_flags_make_the_config(parse):
    flag_values = parse(
        define_search_flags,
        "--work_dir=runs/x",
        "--num_trials=7",
        "--num_workers=2",
        "--controller=ppo",
        "--controller_learning_rate=0.01",
        "--entropy_weight=0.002",
        "--reward=absolute",
        "--target_ms=9",
        "--reward_beta=-0.2",
        "--proxy_epochs=3",
        "--learning_rate=0.05",
        "--batch_size=8",
        "--latency=predicted",
        "--deployment_resolution=192",
        "--seed=4",
    )
    latency = LatencyConfig(cache_path="/c.sqlite")
    config = search_config_from_flags(flag_values, latency, "/t.jsonl")
    assert config.work_dir == "runs/x"
    assert (config.num_trials, config.num_workers) == (7, 2)
    assert config.controller_kind == "ppo"
    controller = config.controller
    assert (controller.batch_size, controller.seed) == (4, 4)
    assert (controller.learning_rate, controller.entropy_weight) == (0.01, 0.002)
    assert config.reward == RewardConfig("absolute", 9.0, None, -0.2)
    assert (config.trainer.epochs, config.trainer.learning_rate) == (3, 0.05)
    assert config.trainer.seed == 4
    assert (config.data.batch_size, config.data.seed) == (8, 4)
    assert (config.latency_mode, config.lut_path) == ("predicted", "/t.jsonl")
    # A search measures each candidate to ±5% within 15 s (its budget), the
    # reference (if any) at the deployment resolution.
    assert config.latency == dataclasses.replace(
        latency, target_precision=0.05, max_measure_s=15.0, reference_resolution=192
    )
    assert config.max_consecutive_failures == 5
    assert config.deployment_resolution == 192


def test_measured_latency_needs_no_table_and_work_dir_has_a_default(parse):
    config = search_config_from_flags(
        parse(define_search_flags), LatencyConfig(), "/t.jsonl"
    )
    assert config.lut_path is None
    assert config.work_dir.startswith("runs/search-")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num_trials=0"], "--num_trials must be >= 1, got 0"),
        (["--num_workers=1000"], "--num_workers must be <= 256, got 1000"),
        (["--trial_timeout_s=0"], "--trial_timeout_s must be > 0, got 0.0"),
        (
            ["--trial_timeout_s=inf"],
            "--trial_timeout_s must be a finite number, got inf",
        ),
        (["--entropy_weight=nan"], "--entropy_weight must be a finite number, got nan"),
        (["--entropy_weight=-1"], "--entropy_weight must be >= 0, got -1.0"),
        (
            ["--controller_learning_rate=0"],
            "--controller_learning_rate must be > 0, got 0.0",
        ),
        (["--deployment_resolution=8"], "--deployment_resolution must be >= 32, got 8"),
    ],
)
def test_bad_search_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        search_config_from_flags(
            parse(define_search_flags, *args), LatencyConfig(), None
        )
    assert str(info.value) == message


def test_retired_names_point_to_flags_that_exist(parse):
    flag_values = parse(define_search_flags)
    assert set(RENAMED).isdisjoint(flag_values)
    assert set(RENAMED.values()) <= set(flag_values)


def test_given_latency_precision_and_cap_are_kept_in_a_search(parse):
    from mnas.flags.latency import define_latency_flags, latency_config_from_flags

    flag_values = parse(
        define_search_flags,
        define_latency_flags,
        "--latency_precision=0.01",
        "--latency_max_seconds=90",
    )
    latency = latency_config_from_flags(flag_values)
    config = search_config_from_flags(flag_values, latency, None)
    assert (config.latency.target_precision, config.latency.max_measure_s) == (
        0.01,
        90.0,
    )
    assert config.reward.target_ratio is None and config.latency.reference is None


def test_target_ratio_rewards_the_ratio_to_mobilenet_v2(parse):
    from mnas.flags.latency import define_latency_flags, latency_config_from_flags

    flag_values = parse(
        define_search_flags,
        define_latency_flags,
        "--target_ratio=0.8",
        "--deployment_resolution=160",
    )
    latency = latency_config_from_flags(flag_values)
    config = search_config_from_flags(flag_values, latency, None)
    assert config.reward.target_ratio == 0.8
    assert config.reward.describe_target() == "target 0.8x the reference"
    assert (config.latency.reference, config.latency.reference_resolution) == (
        "mobilenet-v2",
        160,
    )
    assert config.latency.ratio_precision == config.latency.target_precision == 0.05
    other = parse(
        define_search_flags,
        define_latency_flags,
        "--target_ratio=1",
        "--latency_reference=mnasnet-a1",
    )
    config = search_config_from_flags(other, latency_config_from_flags(other), None)
    assert config.latency.reference == "mnasnet-a1"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--target_ratio=0"], "--target_ratio must be >= 0.01, got 0.0"),
        (["--target_ratio=nan"], "--target_ratio must be a finite number, got nan"),
        (
            ["--target_ratio=1", "--latency=verified"],
            "--target_ratio needs --latency=measured (the lookup table predicts ms, "
            "not a ratio to a reference); got --latency=verified",
        ),
        (
            ["--target_ratio=1", "--nolatency_adaptive"],
            "--target_ratio needs adaptive latency (the reference is timed in the "
            "same rounds as each candidate); drop --nolatency_adaptive",
        ),
    ],
)
def test_bad_target_ratio(parse, args, message):
    from mnas.flags.latency import define_latency_flags, latency_config_from_flags

    flag_values = parse(define_search_flags, define_latency_flags, *args)
    with pytest.raises(ValueError) as info:
        search_config_from_flags(
            flag_values, latency_config_from_flags(flag_values), None
        )
    assert str(info.value) == message


def test_the_shared_default_space_is_not_the_standalone_default(parse):
    config = search_config_from_flags(
        parse(define_search_flags, "--work_dir=w"), LatencyConfig(), "/t.jsonl"
    )
    assert config.space == "mnasnet"  # the paper's, for standalone evaluation


def test_shared_evaluation_has_its_own_defaults_that_flags_override(parse):
    from mnas.search import SharedConfig

    config = search_config_from_flags(
        parse(define_search_flags, "--work_dir=w", "--evaluation=shared"),
        LatencyConfig(),
        "/t.jsonl",
    )
    assert (config.evaluation, config.reward.kind, config.latency_mode) == (
        "shared",
        "absolute",
        "verified",
    )
    assert (config.num_trials, config.time_budget_s) == (1000, None)
    assert config.space == "mnasnet-mbconv"  # where shared weights learn
    assert config.shared == SharedConfig()
    config = search_config_from_flags(
        parse(
            define_search_flags,
            "--work_dir=w",
            "--evaluation=shared",
            "--reward=soft",
            "--latency=predicted",
            "--num_trials=50",
            "--time_budget_s=600",
            "--shared_batch_size=16",
            "--shared_resolution=0",
            "--rl_delay=0.5",
            "--search_space=mnasnet",
        ),
        LatencyConfig(),
        "/t.jsonl",
    )
    assert config.space == "mnasnet"
    assert (config.reward.kind, config.latency_mode, config.num_trials) == (
        "soft",
        "predicted",
        50,
    )
    assert config.time_budget_s == 600.0
    assert config.shared == SharedConfig(batch_size=16, resolution=None, rl_delay=0.5)
