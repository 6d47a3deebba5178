"""The shared weights on the micro space: a weight step moves only its path's
variables, and a step is a function of (seed, trial id), checkpoint included."""

import functools

import numpy as np
import pytest

from mnas.search.shared.config import SharedConfig
from mnas.testing.dnas import MICRO_SPACE

CONFIG = SharedConfig(
    batch_size=8, eval_batch_size=16, ops_warmup=0.0, filters_warmup=0.0
)


@functools.cache
def _data():
    from mnas.train.data import load_proxy_data
    from mnas.train.data_config import DataConfig

    return load_proxy_data(
        DataConfig(resolution=16, max_train_examples=64, max_eval_examples=32)
    )


def _weights(checkpoint_dir=None, config=CONFIG):
    from mnas.search.shared.weights import SharedWeights

    return SharedWeights(MICRO_SPACE, _data(), config, 10, 0, checkpoint_dir)


def _values(variables):
    return [np.array(v.numpy()) for v in variables]


def test_a_weight_step_moves_only_the_sampled_paths_variables():
    weights = _weights()
    net = weights.net
    # SharedWeights zeroes the classifier, which passes no gradient below it
    # on the first step: give it weights so that the whole path gets one.
    assert not any(np.any(v.numpy()) for v in net.classifier.weights)
    rng = np.random.default_rng(0)
    for variable in net.classifier.weights:
        variable.assign(rng.normal(0, 0.1, variable.shape).astype(np.float32))
    # The first choice of every decision, but the op's third.
    actions = [0] * len(net.decisions)
    names = [d.name for d in net.decisions]
    actions[names.index(next(n for n in names if "conv_op" in n))] = 2
    path = net.path_weights(actions)
    on_path = {id(v) for v in net.path_variables(path)}
    trainable = net.weight_variables
    off_path = [v for v in trainable if id(v) not in on_path]
    assert off_path  # other ops exist, so the check below can fail
    before = _values(trainable)
    moments = _values(weights.optimizer.m + weights.optimizer.v)

    result = weights.step(0, actions)

    assert np.isfinite(result.loss) and 0.0 <= result.accuracy <= 1.0
    moved = {
        id(v) for v, old in zip(trainable, before) if not np.array_equal(v.numpy(), old)
    }
    assert moved and moved <= on_path
    assert len(moved) == len(on_path)  # every path variable had a gradient
    index = {id(v): i for i, v in enumerate(trainable)}
    for variable in off_path:
        i = index[id(variable)]
        for slot in (weights.optimizer.m[i], weights.optimizer.v[i]):
            assert not np.any(slot.numpy()), variable.path
    assert any(
        not np.array_equal(new, old)
        for new, old in zip(_values(weights.optimizer.m + weights.optimizer.v), moments)
    )


@pytest.mark.slow
def test_a_step_replayed_from_the_checkpoint_is_the_step_taken(tmp_path):
    config = SharedConfig(batch_size=8, eval_batch_size=16, ops_warmup=0.25)
    rng = np.random.default_rng(0)
    first, second = (tuple(MICRO_SPACE.sample(rng)) for _ in range(2))

    original = _weights(str(tmp_path / "a"), config)
    original.step(0, first)
    original.save(1)
    taken = original.step(1, second)

    restored = _weights(str(tmp_path / "a"), config)
    assert (restored.trained, restored.checkpointed) == (1, 1)
    replayed = restored.step(1, second)
    assert replayed.loss == pytest.approx(taken.loss, rel=1e-6)
    assert replayed.accuracy == taken.accuracy
    for mine, theirs in zip(restored.net.variables, original.net.variables):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_shared_weights_another_supernet_wrote_are_refused_in_one_line(tmp_path):
    """A checkpoint of another layout (another space here; an older mnas's
    supernet alike) is refused naming its folder, not half restored."""
    from mnas.search.shared.weights import SharedWeights, SharedWeightsError
    from mnas.testing.dnas import TINY_SPACE

    _weights(str(tmp_path)).save(1)
    with pytest.raises(SharedWeightsError) as caught:
        SharedWeights(TINY_SPACE, _data(), CONFIG, 10, 0, str(tmp_path))
    message = str(caught.value)
    assert message.startswith(
        f"the shared weights in {tmp_path} do not fit this supernet (written by "
        "another version of mnas?); start a new --work_dir ("
    ), message
    assert "\n" not in message


def test_residual_branches_start_as_their_shortcut_where_it_always_applies():
    import dataclasses

    from mnas.model.supernet import build_supernet
    from mnas.search.shared.weights import zero_init_residuals
    from mnas.search_space.space import DEFAULT_CONV_OPS

    mbconv = tuple(op for op in DEFAULT_CONV_OPS if op.conv_op == "mbconv")
    space = dataclasses.replace(MICRO_SPACE, skips=("identity",), conv_ops=mbconv)
    net = build_supernet(space, "block", (16, 16, 3), 10)
    zeroed = zero_init_residuals(net)
    # The block's first layer changes width (no shortcut): left as built.
    assert zeroed and all(not name.startswith("block0_slot0/") for name in zeroed)
    for slot, layer in zip(net.slots, net.searchable):
        for candidate in layer.candidates:
            gamma = candidate.ops.variables["project_bn"].gamma.numpy()
            if slot.slot == 0:
                assert np.all(gamma == 1.0)
            else:
                assert np.all(gamma == 0.0), f"{layer.name}/{candidate.name}"
                assert f"{layer.name}/{candidate.name}" in zeroed
    # Zeroed, a later layer computes its input exactly: it starts as identity.
    actions = [0] * len(net.decisions)
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 16)).astype(np.float32)
    layer = net.searchable[1]
    from mnas.model.supernet import _Masks

    y = layer.call(x, _Masks(net.path_weights(actions)), "batch_stats", True)
    np.testing.assert_allclose(np.asarray(y), x, atol=1e-6)


def test_no_residual_is_zeroed_where_a_path_may_drop_the_shortcut():
    from mnas.model.supernet import build_supernet
    from mnas.search.shared.weights import zero_init_residuals

    net = build_supernet(MICRO_SPACE, "block", (16, 16, 3), 10)
    assert zero_init_residuals(net) == []


def test_a_space_where_paths_do_not_learn_together_gets_a_one_line_note():
    from mnas.search.shared.weights import shared_space_note
    from mnas.search_space import get_search_space

    assert shared_space_note(get_search_space("mnasnet-mbconv")) is None
    assert shared_space_note(get_search_space("mnasnet")) == (
        "note: in the mnasnet space paths differ in conv type or in whether a "
        "layer has a shortcut, and the shared weights of uniformly sampled paths "
        "stay near chance (docs/shared_evaluation.md); "
        "--search_space=mnasnet-mbconv is the space where they learn"
    )
