"""Latency backend flags -> LatencyConfig, and what mnas-latency times."""

import pytest

from mnas.flags.latency import (
    define_deployment_resolution_flag,
    define_latency_flags,
    deployment_resolution_from_flags,
    latency_config_from_flags,
)
from mnas.latency import DEFAULT_CACHE_PATH, LatencyConfig


def test_defaults_expand_the_cache_path(parse):
    config = latency_config_from_flags(parse(define_latency_flags))
    assert config == LatencyConfig(cache_path=config.cache_path)
    assert config.cache_path.endswith(DEFAULT_CACHE_PATH.removeprefix("~"))
    assert not config.cache_path.startswith("~")


def test_phone_pool_flags(parse):
    config = latency_config_from_flags(
        parse(
            define_latency_flags,
            "--latency_backend=benchmark_model",
            "--benchmark_model=/opt/bm",
            "--serial=A, B",
            "--taskset_mask=0xF0",
            "--num_runs=7",
            "--num_threads=2",
            "--latency_cache=",
            "--no_latency_cache",
        )
    )
    assert config == LatencyConfig(
        backend="benchmark_model",
        benchmark_model="/opt/bm",
        serials=("A", "B"),
        taskset_mask="0xF0",
        num_runs=7,
        num_threads=2,
        cache_path=None,
        bypass_cache=True,
    )
    host = latency_config_from_flags(parse(define_latency_flags, "--cpus=0,2-3"))
    assert host.cpus == (0, 2, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cpus=x"], "--cpus must be a CPU list such as '0' or '0,2-3', got 'x'"),
        (
            ["--latency_backend=benchmark_model", "--benchmark_model=b", "--android",
             "--taskset_mask=zz"],
            "--taskset_mask must be hex (e.g. f0), got 'zz'",
        ),
        (["--num_threads=0"], "--num_threads must be an integer in [1, 256], got 0"),
        (["--num_runs=1000000000"],
         "--num_runs must be an integer in [1, 100000] or None, got 1000000000"),
        (["--android"], "--android needs --latency_backend=benchmark_model (got "
         "--latency_backend=host)"),
    ],
)  # fmt: skip
def test_bad_latency_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        latency_config_from_flags(parse(define_latency_flags, *args))
    assert str(info.value) == message


def test_deployment_resolution_bounds(parse):
    assert (
        deployment_resolution_from_flags(parse(define_deployment_resolution_flag))
        == 224
    )
    for value, message in (
        (16, "--deployment_resolution must be >= 32, got 16"),
        (4096, "--deployment_resolution must be <= 2048, got 4096"),
    ):
        flag_values = parse(
            define_deployment_resolution_flag, f"--deployment_resolution={value}"
        )
        with pytest.raises(ValueError) as info:
            deployment_resolution_from_flags(flag_values)
        assert str(info.value) == message


def test_adaptive_flags_make_the_measurement_settings(parse):
    config = latency_config_from_flags(
        parse(
            define_latency_flags,
            "--latency_precision=0.03",
            "--latency_max_seconds=20",
            "--latency_confidence=0.9",
            "--latency_min_rounds=3",
            "--latency_max_rounds=12",
            "--latency_remeasures=2",
            "--latency_reference=mobilenet-v2",
        )
    )
    assert (config.adaptive, config.target_precision, config.max_measure_s) == (
        True,
        0.03,
        20.0,
    )
    assert (config.confidence, config.min_rounds, config.max_rounds) == (0.9, 3, 12)
    assert (config.remeasures, config.reference) == (2, "mobilenet-v2")
    # mnas-latency's defaults: ±2% within a minute; one plain round on request.
    default = latency_config_from_flags(parse(define_latency_flags))
    assert (default.target_precision, default.max_measure_s) == (0.02, 60.0)
    assert default.reference is None
    plain = latency_config_from_flags(
        parse(define_latency_flags, "--nolatency_adaptive")
    )
    assert plain.adaptive is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["--latency_precision=1.5"], "--latency_precision must be a number in (0, 1), got 1.5"),
        (["--latency_max_seconds=0"], "--latency_max_seconds must be a number in (0, 86400], "
         "got 0.0"),
        (["--latency_min_rounds=1"], "--latency_min_rounds must be an integer in [2, 10000], "
         "got 1"),
        (["--latency_reference=mobilenet-v2", "--nolatency_adaptive"],
         "--latency_reference needs adaptive measurement: the reference is timed "
         "in the same rounds (drop --nolatency_adaptive)"),
    ],
)  # fmt: skip
def test_bad_adaptive_flags(parse, args, message):
    with pytest.raises(ValueError) as info:
        latency_config_from_flags(parse(define_latency_flags, *args))
    assert str(info.value) == message
