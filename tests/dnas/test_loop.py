import dataclasses
import io
import json
import os

import numpy as np
import pytest

from mnas.dnas.loop import (
    JOURNAL_FILE,
    THETA_PLOT,
    DnasConfig,
    DnasConfigError,
    DnasSearch,
    load_latency,
    split_train,
)
from mnas.io.lock import LockedError
from mnas.search.outputs import BEST_FILE
from mnas.testing.dnas import (
    MICRO_SPACE,
    TINY_SPACE,
    micro_latency,
    small_digits,
    tiny_latency,
)


def _config(work_dir, **changes) -> DnasConfig:
    base = dict(
        work_dir=str(work_dir),
        epochs=3,
        warmup_epochs=1,
        batch_size=16,
        steps_per_epoch=3,
        trainer={"epochs": 1, "steps_per_epoch": 2, "bn_recalibration_images": 32},
        deployment_resolution=32,
        measure=False,
    )
    base.update(changes)
    return DnasConfig(**base)


def _search(config, resume=False, **kwargs) -> DnasSearch:
    latency, predictor = micro_latency(config.sharing)
    kwargs.setdefault("stream", io.StringIO())
    return DnasSearch(
        config,
        resume=resume,
        space=MICRO_SPACE,
        latency=latency,
        predictor=predictor,
        data=small_digits(),
        **kwargs,
    )


def records_probs(search):
    """The final P(argmax) per decision, as the journal's last record has it."""
    return search.journal.records[-1]["argmax_probs"]


def _epochs(work_dir):
    with open(os.path.join(work_dir, JOURNAL_FILE)) as handle:
        return [json.loads(line)["epoch"] for line in handle if line.strip()]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"loss": "mse"}, "loss must be one of ('fbnet', 'proxyless'), got 'mse'"),
        ({"warmup_epochs": 3}, "warmup_epochs must lie in [0, epochs=3), got 3"),
        ({"sharing": "cell"}, "sharing must be one of ('block', 'layer'), got 'cell'"),
        ({"initial_temperature": 0}, "initial_temperature must be > 0, got 0"),
        (
            {"theta_fraction": 1.0},
            "theta_fraction must lie strictly between 0 and 1, got 1.0",
        ),
        (
            {"final_temperature": 6.0},
            "final_temperature must lie in (0, initial_temperature=5.0], got 6.0",
        ),
        (
            {"final_temperature": 0.0},
            "final_temperature must lie in (0, initial_temperature=5.0], got 0.0",
        ),
        (
            {"weight_optimizer": "rmsprop"},
            "weight_optimizer must be one of ('adam', 'sgd'), got 'rmsprop'",
        ),
    ],
)
def test_config_errors(tmp_path, changes, message):
    with pytest.raises(DnasConfigError) as error:
        _config(tmp_path, **changes)
    assert str(error.value) == message


def test_temperature_falls_geometrically_from_initial_to_final(tmp_path):
    config = _config(tmp_path, epochs=4, final_temperature=0.5)
    taus = [config.temperature(e) for e in (0, 1, 2, 3, 4)]
    # 5 * 0.1 ** (e / 4): a constant ratio 0.1 ** 0.25 = 0.5623 per epoch
    assert taus == pytest.approx([5.0, 2.8117, 1.5811, 0.8891, 0.5], abs=1e-4)
    assert config.temperature(0.5) == pytest.approx(5.0 * 0.1**0.125)
    assert config.temperature(-1) == 5.0 and config.temperature(9) == 0.5


def test_epoch_records_hold_the_temperatures_and_argmax_probabilities(tmp_path):
    config = _config(tmp_path / "run", epochs=3, final_temperature=1.0)
    search = _search(config)
    search.search()
    records = search.journal.records
    assert [r["temperature"] for r in records] == pytest.approx(
        [config.temperature(e) for e in (0, 1, 2)]
    )
    assert records[-1]["temperature_end"] == pytest.approx(1.0)
    final = search.net.probabilities()
    assert records[-1]["argmax_probs"] == {
        name: pytest.approx(float(max(p)), abs=1e-5) for name, p in final.items()
    }
    assert set(final) == set(search.net.decision_names)
    search.close()


def test_weight_rate_warms_up_for_an_epoch_then_decays_to_zero(tmp_path):
    from mnas.dnas.loop import _weight_optimizer

    config = _config(tmp_path, epochs=3, weight_learning_rate=0.01)
    optimizer = _weight_optimizer(config, steps_per_epoch=10)
    rates = []
    for step in (0, 5, 10, 20, 30):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    # linear 0 -> 0.01 over 10 steps, then cosine over the other 20
    assert rates == pytest.approx([0.0, 0.005, 0.01, 0.005, 0.0], abs=1e-6)


def test_missing_table_says_how_to_build_it(tmp_path):
    path = str(tmp_path / "none.lut.jsonl")
    with pytest.raises(DnasConfigError) as error:
        load_latency(path, TINY_SPACE, "block")
    assert str(error.value) == (
        f"lookup table {path!r} does not exist; build it with "
        f"`mnas-latency --build_lut --lut={path}`"
    )


def test_theta_split_comes_from_the_training_split_only():
    data = small_digits()
    split = split_train(data, 0.2, seed=0)
    assert len(split.t_labels) == round(data.num_train * 0.2)
    assert len(split.w_labels) + len(split.t_labels) == data.num_train


def test_short_search_writes_the_work_directory(tmp_path):
    config = _config(tmp_path / "run", loss="proxyless", lam=0.5)
    search = _search(config)
    entry = search.run()
    work_dir = config.work_dir
    assert _epochs(work_dir) == [1, 2, 3]
    for name in (BEST_FILE, THETA_PLOT, "config.json", "models/derived.tflite"):
        assert os.path.exists(os.path.join(work_dir, name)), name
    with open(os.path.join(work_dir, BEST_FILE)) as handle:
        best = json.load(handle)
    assert best["search_space"] == MICRO_SPACE.identity()
    assert best["best"][0]["block_strings"] == list(
        MICRO_SPACE.decode_for("block", entry["actions"]).block_strings
    )
    derived = MICRO_SPACE.decode_for("block", entry["actions"])
    assert best["best"][0]["predicted_ms"] == pytest.approx(
        float(search.predictor.predict(derived))
    )
    assert best["best"][0]["argmax_probabilities"] == records_probs(search)
    records = search.journal.records
    assert records[0]["theta_steps"] == 0  # warm-up
    assert records[1]["theta_steps"] == 3
    assert records[2]["temperature"] < records[0]["temperature"]


def test_refuses_an_existing_work_dir_without_resume(tmp_path):
    config = _config(tmp_path / "run")
    _search(config).close()
    with pytest.raises(DnasConfigError) as error:
        _search(config)
    assert "already holds a search; pass --resume" in str(error.value)
    with pytest.raises(DnasConfigError) as error:
        _search(dataclasses.replace(config, beta=1.0), resume=True)
    assert "beta: saved 0.6, now 1.0" in str(error.value)


def test_a_second_search_in_a_held_work_dir_is_refused_naming_the_pid(tmp_path):
    config = _config(tmp_path / "run")
    first = _search(config)
    with pytest.raises(LockedError) as error:
        _search(config, resume=True)
    assert f"(pid {os.getpid()})" in str(error.value)
    first.search = lambda: None  # (no need to train for this)
    first.derive_and_evaluate = lambda: {}
    first.run()  # run() releases the directory when it ends
    _search(config, resume=True).close()


def test_a_garbage_table_is_refused_before_the_work_dir_is_claimed(tmp_path):
    table = tmp_path / "garbage.lut.jsonl"
    table.write_text("not a table\n")
    config = _config(tmp_path / "run", lut_path=str(table))
    with pytest.raises(DnasConfigError) as error:
        DnasSearch(config, space=MICRO_SPACE, data=small_digits())
    assert str(error.value).startswith(f"{table}: line 1 is corrupt (")
    assert not os.path.exists(config.work_dir)


class _KilledError(Exception):
    pass


# Slow (a minute or more of supernet steps); resume and sharing stay covered fast by
# test_resume_restores_weights_theta_optimizers_and_rng and the supernet tests.
@pytest.mark.slow
def test_resume_after_interruption_continues_without_duplicates(tmp_path):
    config = _config(tmp_path / "run", epochs=4)
    search = _search(config)
    original = search.run_epoch

    def run_epoch(epoch):
        if epoch == 2:
            raise _KilledError
        return original(epoch)

    search.run_epoch = run_epoch
    with pytest.raises(_KilledError):
        search.search()
    search.close()  # the process died
    assert _epochs(config.work_dir) == [1, 2]
    resumed = _search(config, resume=True)
    assert int(resumed.epoch.numpy()) == 2
    resumed.search()
    assert _epochs(config.work_dir) == [1, 2, 3, 4]
    assert int(resumed.epoch.numpy()) == 4


def test_resume_restores_weights_theta_optimizers_and_rng(tmp_path):
    config = _config(tmp_path / "b", epochs=3)
    first = _search(config)
    first.run_epoch(0)
    record = first.run_epoch(1)  # as search() does, then the process dies
    first.epoch.assign(2)
    first.record.assign(json.dumps(record))
    first.manager.save(checkpoint_number=2)
    saved = [v.numpy().copy() for v in first.checkpointed_variables()]
    first.close()
    resumed = _search(config, resume=True)
    restored = [v.numpy() for v in resumed.checkpointed_variables()]
    assert len(saved) == len(restored) > 50
    for a, b in zip(saved, restored):
        np.testing.assert_array_equal(a, b)
    assert _epochs(config.work_dir) == [2]  # the record came from the checkpoint
    resumed.search()
    assert _epochs(config.work_dir) == [2, 3]


# Slow (a minute or more of supernet steps); resume and sharing stay covered fast by
# test_resume_restores_weights_theta_optimizers_and_rng and the supernet tests.
@pytest.mark.slow
def test_journal_is_repaired_from_the_checkpoint_and_damage_refused(tmp_path):
    config = _config(tmp_path / "run", epochs=2)
    _search(config).run()
    path = os.path.join(config.work_dir, JOURNAL_FILE)
    with open(path) as handle:
        lines = handle.readlines()
    # Killed after the checkpoint, before the append: the record is restored.
    with open(path, "w") as handle:
        handle.writelines(lines[:1])
    _search(config, resume=True).close()
    assert _epochs(config.work_dir) == [1, 2]
    # A duplicated line is dropped; a torn write is cut and reported.
    with open(path, "a") as handle:
        handle.write(lines[1])
        handle.write('{"epoch": 3, "tor')
    stream = io.StringIO()
    _search(config, resume=True, stream=stream).close()
    assert _epochs(config.work_dir) == [1, 2]
    assert stream.getvalue().splitlines()[0] == (
        f"journal recovery: {path}: cut a torn last line (line 4, 17 bytes) left "
        "by an interrupted write"
    )
    # A corrupt line before the last is damage, not a torn write: refused.
    with open(path, "w") as handle:
        handle.writelines(["{garbage\n", lines[1]])
    with pytest.raises(ValueError) as error:
        _search(config, resume=True)
    assert str(error.value) == (
        f"{path}: line 1 is corrupt (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); only a torn last line is cut "
        "automatically: repair or remove this line by hand"
    )


@pytest.mark.slow
def test_default_recipe_learns_and_concentrates_theta(tmp_path):
    """The default recipe (6 epochs, batch 64, Adam weights, θ at 0.2, τ 5 ->
    0.5) on the tiny space and all of digits: the supernet learns and θ
    decides. Measured 2026-11-30: train accuracy 0.147 -> 0.735, entropy
    1.049 -> 0.595, 7 of 12 decisions at P(argmax) >= 0.8. (The held-out
    accuracy of the softmax(θ/τ) mixture is no gate: it peaked at 0.671 and
    fell to 0.499 as τ fell, see docs/dnas.md.)"""
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    config = _config(
        tmp_path / "run",
        epochs=6,
        batch_size=64,
        steps_per_epoch=None,
    )
    latency, predictor = tiny_latency("block")
    search = DnasSearch(
        config,
        space=TINY_SPACE,
        latency=latency,
        predictor=predictor,
        data=load_proxy_data(DataConfig()),
        stream=io.StringIO(),
    )
    search.run()
    records = search.journal.records
    assert records[-1]["train_accuracy"] > 0.5  # chance is 0.1
    assert records[-1]["theta_entropy"] < records[0]["theta_entropy"] - 0.3
    decided = [p for p in records[-1]["argmax_probs"].values() if p >= 0.8]
    assert len(decided) >= 5, records[-1]["argmax_probs"]
    assert os.path.exists(os.path.join(config.work_dir, THETA_PLOT))


def test_theta_moves_toward_the_branch_with_the_lower_loss(tmp_path):
    """A real supernet on real digits: weights trained with every sample on
    one conv op make that op the branch of clearly lower loss; θ steps alone
    (no latency pressure, beta 0) must then make it the argmax."""
    from mnas.testing.dnas import set_one_hot_theta

    config = _config(tmp_path / "run", beta=0.0, batch_size=32)
    search = _search(config)
    net = search.net
    names = net.decision_names
    op = names.index("block0/conv_op")
    trained = 3  # not 0: argmax of all-zero logits is 0
    set_one_hot_theta(net, [trained if i == op else 0 for i in range(len(names))])
    for theta in net.theta:  # only the conv op is fixed; the rest stay mixed
        if theta is not net.theta[op]:
            theta.assign(np.zeros(theta.shape, np.float32))
    net.temperature.assign(1.0)
    rng = np.random.default_rng(0)
    split = search.split
    for _ in range(25):
        idx = rng.choice(len(split.w_labels), 32, replace=False)
        _, w_grads, _ = search._gradients(split.w_images[idx], split.w_labels[idx])
        search._apply_weights(w_grads)
    net.theta[op].assign(np.zeros(net.theta[op].shape, np.float32))
    for _ in range(15):
        idx = rng.choice(len(split.t_labels), 32, replace=False)
        _, _, t_grads = search._gradients(split.t_images[idx], split.t_labels[idx])
        search._apply_theta(t_grads)
    probs = net.probabilities()["block0/conv_op"]
    assert int(np.argmax(probs)) == trained, probs
    assert probs[trained] > 0.4, probs  # uniform is 0.2
    search.close()


# Slow (a minute or more of supernet steps); resume and sharing stay covered fast by
# test_resume_restores_weights_theta_optimizers_and_rng and the supernet tests.
@pytest.mark.slow
def test_layer_sharing_search_derives_the_decoded_argmax(tmp_path):
    config = _config(tmp_path / "run", sharing="layer", epochs=2, loss="proxyless")
    search = _search(config)
    entry = search.run()
    assert len(entry["actions"]) == len(MICRO_SPACE.layerwise_decisions())
    spec = MICRO_SPACE.decode_for("layer", entry["actions"])
    assert entry["block_strings"] == list(spec.block_strings)
    assert search.net.derive() == spec
