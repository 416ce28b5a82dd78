"""Property tests: every sampled and mutated architecture builds, runs, and matches its
inferred output shape; strings round-trip; everything is deterministic per seed."""
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.space import EinSpace, MutationError

DATASET_SHAPES = [(3, 28, 28), (1, 24, 24), (3, 64, 64), (1, 27, 18), (1, 64, 128), (12, 18, 18), (3, 32, 32)]
# A tighter memory limit than the default keeps weight initialisation fast in tests; the
# property (passes the limits => runs) is the same.
SPACES = {shape: EinSpace(input_shape=shape, mem_limit_mb=512) for shape in DATASET_SHAPES}
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _runs_with_inferred_shape(space, arch, num_classes=7):
    torch.manual_seed(0)
    net = space.build(arch, num_classes)
    x = torch.randn(2, *space.input_shape)
    with torch.no_grad():
        features = net.backbone(x)
        logits = net.head(features)
    assert tuple(features.shape) == (2, *arch.output_shape)
    assert tuple(logits.shape) == (2, num_classes)
    assert sum(p.numel() for p in net.backbone.parameters()) == arch.num_params


def _round_trips(space, arch):
    again = space.parse(arch.long_string)
    assert again.long_string == arch.long_string
    assert space.parse(arch.short_string).long_string == arch.long_string


@PROPERTY
@given(seed=st.integers(0, 10**9), shape=st.sampled_from(DATASET_SHAPES))
def test_sampled_architectures_run_and_round_trip(seed, shape):
    space = SPACES[shape]
    arch = space.sample(seed)
    assert space.sample(seed).long_string == arch.long_string  # deterministic
    assert arch.memory_bytes(space.cfg.batch_size) <= 512 * 2**20
    _runs_with_inferred_shape(space, arch)
    _round_trips(space, arch)


@PROPERTY
@given(seed=st.integers(0, 10**9), shape=st.sampled_from(DATASET_SHAPES))
def test_mutated_architectures_run_and_round_trip(seed, shape):
    space = SPACES[shape]
    parent = space.sample(seed)
    child = space.mutate(parent, seed + 1)
    assert space.mutate(parent, seed + 1).long_string == child.long_string  # deterministic
    assert parent.long_string == space.sample(seed).long_string  # the parent is untouched
    _runs_with_inferred_shape(space, child)
    _round_trips(space, child)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**9), name=st.sampled_from(["resnet18", "wideresnet16_4", "vit", "mlpmixer"]))
def test_mutated_seeds_run(seed, name):
    space = EinSpace(input_shape=(3, 28, 28), mem_limit_mb=None)
    child = space.mutate(space.seed(name), seed)
    _round_trips(space, child)
    net = space.build(child, 5)
    with torch.no_grad():
        assert net.backbone(torch.randn(2, 3, 28, 28)).shape[1:] == child.output_shape


def test_different_seeds_give_different_architectures():
    space = SPACES[(3, 28, 28)]
    assert len({space.sample(s).long_string for s in range(20)}) >= 15


def test_a_mutated_leaf_never_keeps_its_op():
    space = EinSpace(input_shape=(3, 28, 28))
    arch = space.parse("sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]")
    leaves = [i for i, node in enumerate(arch.nodes()) if node.op.is_terminal]
    for index in leaves:
        before = arch.nodes()[index].op.name
        for seed in range(8):
            try:
                child = space.mutate_node(arch, index, seed)
            except MutationError:
                continue  # a replacement that cannot run downstream is a failed try, not a keep
            assert child.nodes()[index].op.name != before
            assert child.num_nodes == arch.num_nodes


def test_nonterminal_mutation_regrows_the_subtree():
    space = EinSpace(input_shape=(3, 28, 28))
    arch = space.seed("vit")
    changed = set()
    for seed in range(10):
        try:
            changed.add(space.mutate_node(arch, 0, seed).long_string)
        except MutationError:  # the root regrows as a fresh sample, which may restart
            continue
    assert arch.long_string not in changed and len(changed) >= 5
