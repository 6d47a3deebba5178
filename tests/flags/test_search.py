"""mnas-search's flags -> SearchConfig (today's dict-valued fields)."""

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
    assert config.latency == latency
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


def test_retired_names():
    assert RENAMED == {"alpha": "reward_alpha", "beta": "reward_beta"}


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
        ),
        LatencyConfig(),
        "/t.jsonl",
    )
    assert (config.reward.kind, config.latency_mode, config.num_trials) == (
        "soft",
        "predicted",
        50,
    )
    assert config.time_budget_s == 600.0
    assert config.shared == SharedConfig(batch_size=16, resolution=None, rl_delay=0.5)
