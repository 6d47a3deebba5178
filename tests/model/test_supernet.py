import numpy as np
import pytest
import tensorflow as tf

from mnas.model.builder import build_model
from mnas.model.supernet import BATCH_STATS, build_supernet
from mnas.testing.dnas import (
    TINY_SPACE,
    assert_supernet_computes_plain,
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


def _paths(net, rng, count):
    """Random action vectors, the first with equal widths across the block
    boundary and pooling skips (the skip projection's corner)."""
    decisions = TINY_SPACE.decisions_for(net.sharing)
    for index in range(count):
        actions = [int(rng.integers(d.num_choices)) for d in decisions]
        if index == 0:
            named = dict(zip((d.name for d in decisions), actions))
            named["block0/filters"], named["block1/filters"] = 2, 0
            for name in named:
                if name.endswith("/skip"):
                    named[name] = 2
            actions = [named[d.name] for d in decisions]
        yield actions


def test_a_single_path_computes_the_plain_network_in_every_mode(net):
    """Tensor one-hot weights (tf.cond, eager and traced) and a host path
    (numpy weights) give the plain build's output with the copied weights."""
    rng = np.random.default_rng(3)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (4, *SHAPE)).astype(np.float32)
    traced = tf.function(
        lambda x, w: net(x, training=False, arch_weights=w, single_path=True)
    )
    for actions in _paths(net, rng, 4):
        set_one_hot_theta(net, actions)
        spec = net.derive()
        plain = build_model(spec, SHAPE, 10, classifier_activation=None)
        net.copy_weights_to(plain, spec)
        expected = plain(images, training=False).numpy()
        path = net.path_weights(actions)
        tensors = {k: tf.constant(v) for k, v in path.items()}
        for got in (
            net(images, training=False, arch_weights=tensors, single_path=True),
            traced(images, tensors),
            net.run_path(images, path, training=False),
        ):
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_a_host_path_runs_each_candidate_traced_with_batch_statistics(net):
    """``run_path`` with BATCH_STATS equals the plain network normalizing by
    the batch, leaves the moving statistics alone, and traces each candidate
    once whatever path goes through it."""
    rng = np.random.default_rng(4)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (6, *SHAPE)).astype(np.float32)
    statistics = [v.numpy() for bn in net.batch_norms() for v in bn.weights[2:]]
    for actions in _paths(net, rng, 4):
        set_one_hot_theta(net, actions)
        spec = net.derive()
        plain = build_model(
            spec, SHAPE, 10, dropout_rate=0.0, classifier_activation=None
        )
        net.copy_weights_to(plain, spec)
        expected = plain(images, training=True).numpy()
        got = net.run_path(images, net.path_weights(actions), training=BATCH_STATS)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-3, atol=1e-3)
    after = [v.numpy() for bn in net.batch_norms() for v in bn.weights[2:]]
    for before, now in zip(statistics, after):
        np.testing.assert_array_equal(before, now)
    counts = [
        c.__dict__["_path_function"].experimental_get_tracing_count()
        for layer in net.searchable
        for c in layer.candidates
        if "_path_function" in c.__dict__
    ]
    assert counts and set(counts) == {1}


def test_path_weights_widen_named_decisions(net):
    actions = [0] * len(net.decisions)
    uniform = {d.name for d in net.decisions if d.kind == "conv_op"}
    largest = {d.name for d in net.decisions if d.kind in ("filters", "layers")}
    path = net.path_weights(actions, uniform=uniform, largest=largest)
    assert path["block0/filters"].tolist() == [0.0, 0.0, 1.0]  # 16 (x1.25 = 24)
    assert path["block1/layers"].tolist() == [0.0, 0.0, 1.0]  # 3 layers
    for name in (k for k in path if k.endswith("conv_op")):
        np.testing.assert_allclose(path[name], [0.2] * 5)
    kernels = [k for k in path if k.endswith("kernel")]
    assert all(path[k].tolist() == [1.0, 0.0] for k in kernels)


def test_a_slots_depthwise_family_holds_one_tensor_per_part(net):
    """TuNAS sharing: dsconv and MBConv at every expansion use one depthwise,
    projection and SE tensor per slot, at the largest shape (5x5 kernel, six
    times the widest input); the full conv keeps its own; batch norms stay
    per candidate."""
    for layer, slot in zip(net.searchable, net.slots):
        family = [c for c in layer.candidates if c.conv_op != "conv"]
        assert [c.name for c in family] == [
            "dsconv",
            "mbconv_e1",
            "mbconv_e3",
            "mbconv_e6",
        ]
        widest_in = max(slot.in_widths)
        for part, shape in {
            "dw": (5, 5, 6 * widest_in, 1),
            "project": (1, 1, 6 * widest_in, max(slot.out_widths)),
            "se_expand": (1, 1, int(widest_in * 0.25), 6 * widest_in),
        }.items():
            tensors = {id(c.ops.variables[part]) for c in family}
            assert len(tensors) == 1, part
            assert tuple(family[0].ops.variables[part].shape) == shape, part
        expand = {id(c.ops.variables["expand"]) for c in family[2:]}
        assert len(expand) == 1 and "expand" not in family[1].ops.variables
        conv = layer.candidates[0].ops.variables
        assert tuple(conv["conv"].shape)[:2] == (5, 5)
        assert not {id(v) for v in conv.values()} & {
            id(v) for c in family for v in c.ops.variables.values()
        }
        norms = [c.ops.variables["project_bn"] for c in family]
        assert len({id(bn) for bn in norms}) == len(family)


def _named_actions(net, **by_kind) -> list[int]:
    """Every decision's first choice, but ``by_kind`` (kind -> choice label)."""
    actions = []
    for decision in net.decisions:
        label = by_kind.get(decision.kind)
        actions.append(0 if label is None else decision.choices.index(label))
    return actions


def test_a_step_on_one_path_trains_the_weights_a_sharing_path_copies(net):
    """A gradient step on MBConv e6 with 5x5 kernels moves what the plain
    MBConv e3 with 3x3 kernels is built from (the centre, first channels),
    and leaves the full conv's own weights alone."""
    rng = np.random.default_rng(5)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (4, *SHAPE)).astype(np.float32)
    labels = tf.constant([0, 1, 2, 3])
    trained = _named_actions(net, conv_op="mbconv_e6", kernel="5")
    sharing = _named_actions(net, conv_op="mbconv_e3", kernel="3")
    separate = _named_actions(net, conv_op="conv", kernel="3")

    def plain_weights(actions):
        set_one_hot_theta(net, actions)
        spec = net.derive()
        plain = build_model(spec, SHAPE, 10, classifier_activation=None)
        net.copy_weights_to(plain, spec)
        return {
            w.path: w.numpy()
            for layer in plain.layers
            if layer.name.startswith("block")
            for w in layer.weights
            if w.path.endswith("kernel")
        }

    before = {
        name: plain_weights(a) for name, a in (("e3", sharing), ("conv", separate))
    }
    path = net.path_weights(trained)
    variables = net.path_variables(path)
    with tf.GradientTape() as tape:
        logits = net.run_path(images, path, training=BATCH_STATS)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
        )
    for variable, gradient in zip(variables, tape.gradient(loss, variables)):
        variable.assign_sub(0.5 * gradient)
    after = {
        name: plain_weights(a) for name, a in (("e3", sharing), ("conv", separate))
    }

    moved = [
        p for p in before["e3"] if not np.allclose(before["e3"][p], after["e3"][p])
    ]
    assert any(p.endswith("dwconv/kernel") for p in moved), moved
    assert any("expand_conv" in p for p in moved), moved
    assert any("project_conv" in p for p in moved), moved
    for p, value in before["conv"].items():
        if p.endswith("_conv/kernel") and "skip" not in p:
            np.testing.assert_array_equal(after["conv"][p], value, err_msg=p)


def test_a_first_block_with_its_own_ops_holds_only_those_and_computes_the_plain_network():
    import dataclasses

    from mnas.search_space.space import DEFAULT_CONV_OPS

    e1, e3, e6 = DEFAULT_CONV_OPS[2:5]
    space = dataclasses.replace(
        TINY_SPACE, conv_ops=(e3, e6), first_block_conv_ops=(e1,), skips=("identity",)
    )
    net = build_supernet(space, "block", SHAPE, 10)
    for slot, layer in zip(net.slots, net.searchable):
        expected = ["mbconv_e1"] if slot.block == 0 else ["mbconv_e3", "mbconv_e6"]
        assert [c.name for c in layer.candidates] == expected
    rng = np.random.default_rng(4)
    randomize_supernet(net, rng)
    images = rng.uniform(-1, 1, (4, *SHAPE)).astype(np.float32)
    decisions = space.decisions_for("block")
    for _ in range(3):
        actions = [int(rng.integers(d.num_choices)) for d in decisions]
        set_one_hot_theta(net, actions)
        spec = net.derive()
        assert spec == space.decode(actions)
        assert spec.blocks[0].expand_ratio == 1
        assert_supernet_computes_plain(net, spec, images)
