import numpy as np
import pytest
import tensorflow as tf

from mnas.model.builder import build_model
from mnas.model.supernet import build_supernet
from mnas.testing.dnas import (
    TINY_SPACE,
    randomize_supernet,
    set_one_hot_theta,
    tiny_latency,
)

SHAPE = (16, 16, 3)


@pytest.fixture(scope="module", params=["block", "layer"])
def net(request):
    return build_supernet(TINY_SPACE, request.param, SHAPE, 10)


def test_supernet_holds_every_candidate(net):
    assert len(net.searchable) == len(TINY_SPACE.slots(net.sharing))
    for layer in net.searchable:
        assert layer.num_candidates == len(TINY_SPACE.conv_ops)
        labels = [c.name for c in layer.candidates]
        assert labels == [op.label for op in TINY_SPACE.conv_ops]
    assert [d.name for d in net.decisions] == [
        d.name for d in TINY_SPACE.decisions_for(net.sharing)
    ]


def test_derived_architecture_is_the_decoded_argmax(net):
    rng = np.random.default_rng(1)
    for _ in range(5):
        for theta in net.theta:
            theta.assign(rng.normal(size=theta.shape).astype(np.float32))
        actions = tuple(int(np.argmax(t.numpy())) for t in net.theta)
        assert net.argmax_actions() == actions
        assert net.derive() == TINY_SPACE.decode_for(net.sharing, actions)


def test_one_hot_supernet_computes_the_plain_network(net):
    rng = np.random.default_rng(0)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (4, *SHAPE)).astype(np.float32)
    decisions = TINY_SPACE.decisions_for(net.sharing)
    for trial in range(6):
        actions = [int(rng.integers(d.num_choices)) for d in decisions]
        if trial == 0:  # equal widths across the block boundary, pooling skip
            named = dict(zip((d.name for d in decisions), actions))
            named["block0/filters"], named["block1/filters"] = 2, 0
            for name in named:
                if name.endswith("/skip"):
                    named[name] = 2
            actions = [named[d.name] for d in decisions]
        set_one_hot_theta(net, actions)
        spec = net.derive()
        assert spec == TINY_SPACE.decode_for(net.sharing, actions)
        plain = build_model(spec, SHAPE, 10, classifier_activation=None)
        net.copy_weights_to(plain, spec)
        expected = plain(images, training=False).numpy()
        got = net(images, training=False).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_theta_gets_gradients_from_ce_and_from_latency_separately(net):
    latency, _ = tiny_latency(net.sharing)
    for theta in net.theta:
        theta.assign(np.zeros(theta.shape, np.float32))
    images = tf.random.stateless_uniform((4, *SHAPE), (1, 2), -1, 1)
    labels = tf.constant([0, 1, 2, 3])
    generator = tf.random.Generator.from_seed(0)
    with tf.GradientTape(persistent=True) as tape:
        weights = net.arch_weights(1.0, generator)
        logits = net(images, training=True, arch_weights=weights)
        ce = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        )
        ms = latency(weights)
    for loss in (ce, ms):
        grads = tape.gradient(loss, net.theta_variables)
        assert all(g is not None for g in grads)
        norms = [float(tf.norm(g)) for g in grads]
        assert sum(n > 0 for n in norms) >= len(norms) // 2
        assert max(norms) > 1e-6
    # The latency term alone prefers smaller widths: its gradient on the
    # widest filters choice is positive (raising it raises latency).
    grads = dict(zip(net.decision_names, tape.gradient(ms, net.theta_variables)))
    assert float(grads["block1/filters"][2]) > 0
