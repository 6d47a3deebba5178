import json
import pathlib

import pytest

from mnas.scaling.grid import (
    DEFAULT_TRIPLES,
    RESULTS_FILE,
    ScalingSearchConfig,
    grid_triples,
    parse_triples,
    run_scaling_search,
)
from mnas.search.reward import RewardConfig
from mnas.search_space import get_preset
from mnas.search_space.scaling import ScalingCoefficients, ScalingError, scale
from mnas.train.data_config import DataConfig
from mnas.train.proxy_config import TrainerConfig


def test_default_triples_satisfy_the_constraint():
    assert (1.2, 1.1, 1.15) in DEFAULT_TRIPLES  # EfficientNet's published triple
    assert len(set(DEFAULT_TRIPLES)) == len(DEFAULT_TRIPLES)  # none scored twice
    for triple in DEFAULT_TRIPLES:
        ScalingCoefficients(*triple).check(0.1)


def test_grid_triples_respect_tolerance():
    triples = grid_triples(step=0.05, high=1.6, tolerance=0.1)
    assert (1.2, 1.1, 1.15) in triples
    assert all(abs(a * b * b * g * g - 2) <= 0.1 for a, b, g in triples)
    assert len(grid_triples(step=0.05, high=1.6, tolerance=0.02)) < len(triples)
    with pytest.raises(ScalingError) as info:
        grid_triples(step=0)
    assert str(info.value) == "grid step must be a finite number > 0, got 0"
    with pytest.raises(ScalingError) as info:
        grid_triples(step=1e-9)
    assert str(info.value) == (
        "grid step 1e-09 gives 600000001 values per coefficient on 1.0..1.6; "
        "at most 100 (a cube of them is scored)"
    )
    assert len(grid_triples(step=0.6 / 99)) > len(triples)  # 100 values: allowed


def test_parse_triples():
    assert parse_triples(["1.2:1.1:1.15", "1:1.05:1.35"]) == (
        (1.2, 1.1, 1.15),
        (1.0, 1.05, 1.35),
    )
    with pytest.raises(ScalingError) as info:
        parse_triples(["1.2:x:1"])
    assert str(info.value) == (
        "a triple is written alpha:beta:gamma (e.g. 1.2:1.1:1.15), got '1.2:x:1'"
    )


def test_config_rejects_triples_off_the_constraint():
    with pytest.raises(ScalingError, match=r"= 1\.0000 .*tolerance 0\.1$"):
        ScalingSearchConfig(triples=((1.0, 1.0, 1.0),))
    with pytest.raises(ScalingError) as info:
        ScalingSearchConfig(triples=())
    assert str(info.value) == "the grid holds no (alpha, beta, gamma) triple"


@pytest.mark.slow
def test_tiny_grid_search_ranks_by_accuracy(tmp_path):
    config = ScalingSearchConfig(
        triples=((1.2, 1.1, 1.15), (1.0, 1.05, 1.35)),
        data=DataConfig(resolution=16, max_train_examples=128),
        trainer=TrainerConfig(epochs=1),
    )
    lines = []
    result = run_scaling_search(
        get_preset("mnasnet-small"), config, progress=lines.append
    )
    assert len(lines) == 2
    scores = [r.score for r in result.results]
    assert scores == sorted(scores, reverse=True)
    assert result.chosen == result.results[0]
    assert all(r.latency_ms is None for r in result.results)
    assert "alpha" in result.table()
    data = json.loads(pathlib.Path(result.write(str(tmp_path))).read_text())
    assert data["score"] == "accuracy"
    assert data["chosen"]["alpha"] == result.chosen.alpha


def test_reward_without_backend_is_refused():
    config = ScalingSearchConfig(reward=RewardConfig(target_ms=5))
    with pytest.raises(ValueError, match="needs a latency backend"):
        run_scaling_search(get_preset("mnasnet-small"), config)


# -- the work directory: journal of finished triples, resume, outputs -------------


class _Stop(BaseException):
    """A kill in the middle of the grid."""


def _fake_grid(monkeypatch, scores, stop_at=None):
    """Replaces training with a fixed score per triple; records what ran."""
    from mnas.scaling import grid

    ran = []

    def evaluate(self, triple):
        if triple == stop_at:
            raise _Stop
        ran.append(triple)
        score = scores[triple]
        return grid.TripleResult(
            *triple,
            flops_factor=ScalingCoefficients(*triple).flops_factor,
            proxy_resolution=16,
            resolution=224,
            params=1,
            macs=1,
            accuracy=score,
            latency_ms=None,
            score=score,
            train_s=0.0,
            error=None if score is not None else "loss became NaN",
        )

    monkeypatch.setattr(grid._GridRun, "_evaluate", evaluate)
    return ran


TRIPLES = DEFAULT_TRIPLES[:3]
SCORES = {TRIPLES[0]: 0.5, TRIPLES[1]: None, TRIPLES[2]: 0.75}


def test_grid_work_dir_resume_skips_the_finished_triples(tmp_path, monkeypatch):
    from mnas.flags.arch import load_arch

    base = get_preset("mnasnet-small")
    config = ScalingSearchConfig(triples=TRIPLES)
    work_dir = str(tmp_path / "grid")
    _fake_grid(monkeypatch, SCORES, stop_at=TRIPLES[2])
    with pytest.raises(_Stop):
        run_scaling_search(base, config, work_dir=work_dir)
    lines = (tmp_path / "grid" / "triples.jsonl").read_text().splitlines()
    assert [
        tuple(json.loads(x)[k] for k in ["alpha", "beta", "gamma"]) for x in lines
    ] == list(TRIPLES[:2])

    with pytest.raises(ScalingError, match="already holds a search; pass --resume"):
        run_scaling_search(base, config, work_dir=work_dir)
    ran = _fake_grid(monkeypatch, SCORES)
    result = run_scaling_search(base, config, work_dir=work_dir, resume=True)
    assert ran == [TRIPLES[2]]  # the finished two came from the journal
    assert [r.triple for r in result.results] == [TRIPLES[2], TRIPLES[0], TRIPLES[1]]
    assert result.results[-1].error == "loss became NaN"
    best = json.loads((tmp_path / "grid" / "best.json").read_text())
    assert best["num_completed"] == 2 and best["score"] == "accuracy"
    assert (best["best"][0]["alpha"], best["best"][0]["gamma"]) == (
        TRIPLES[2][0],
        TRIPLES[2][2],
    )
    chosen = scale(base, 1.0, *TRIPLES[2])
    assert load_arch(str(tmp_path / "grid" / "best.json")) == chosen
    saved = json.loads((tmp_path / "grid" / RESULTS_FILE).read_text())
    assert saved["chosen"] == dict(zip(("alpha", "beta", "gamma"), TRIPLES[2]))


def test_grid_resume_may_grow_the_grid_but_not_change_the_training(
    tmp_path, monkeypatch
):
    base = get_preset("mnasnet-small")
    work_dir = str(tmp_path / "grid")
    _fake_grid(monkeypatch, SCORES)
    run_scaling_search(
        base, ScalingSearchConfig(triples=TRIPLES[:1]), work_dir=work_dir
    )
    ran = _fake_grid(monkeypatch, SCORES)
    run_scaling_search(
        base, ScalingSearchConfig(triples=TRIPLES), work_dir=work_dir, resume=True
    )
    assert ran == list(TRIPLES[1:])
    changed = ScalingSearchConfig(triples=TRIPLES, trainer=TrainerConfig(epochs=2))
    with pytest.raises(ScalingError) as info:
        run_scaling_search(base, changed, work_dir=work_dir, resume=True)
    assert str(info.value) == (
        f"cannot resume: {work_dir} belongs to a different config:\n"
        "  trainer.epochs: saved 4, now 2"
    )
