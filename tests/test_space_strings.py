"""String forms: byte-exact examples, round trips, the seed form, and clean parse errors."""
import random

import pytest

from nas.space import EinSpace, ParseError

SHORT = ("sequential(routing[im2col(3,1,1), computation<linear(16)>, col2im], "
         "branching(2){clone(2), computation<relu>, computation<identity>, add(2)})")
LONG = ("sequential[routing[im2col(3,1,1){'out_feature_shape': [784, 27]}, computation[linear(16)"
        "{'out_feature_shape': [784, 16]}], col2im{'out_feature_shape': [16, 28, 28]}], branching(2)"
        "[clone(2){'out_feature_shape': [16, 28, 28]}, computation[relu{'out_feature_shape': [16, 28, 28]}], "
        "computation[identity{'out_feature_shape': [16, 28, 28]}], add(2){'out_feature_shape': [16, 28, 28]}]]")
SEED_FORM = ("sequential[routing[im2col3k1s1p, computation[linear16], col2im], "
             "branching(2)[clone(2), computation[relu], computation[identity], add(2)]]")


@pytest.fixture(scope="module")
def space():
    return EinSpace(input_shape=(3, 28, 28))


def test_paper_examples_print_back_byte_for_byte(space):
    for text in (SHORT, LONG, SEED_FORM):
        arch = space.parse(text)
        assert arch.short_string == SHORT
        assert arch.long_string == LONG
    assert space.parse(LONG).num_nodes == 13


def test_legacy_spellings_map_to_canonical_names(space):
    arch = space.parse("routing[im2col4k4s0p, computation[linear_x(4)], permute21]")
    assert arch.short_string == "routing[im2col(4,4,0), computation<linear(x4)>, perm(0,2,1)]"
    assert arch.output_shape == (192, 49)
    attention = ("routing[im2col1k1s0p, branching(2)[clone(2), computation[identity], "
                 "routing[identity, computation[identity], permute21], dot_product(scaled=True)], identity]")
    assert space.parse(attention).short_string.count("dot_product(scaled)") == 1
    assert space.parse(attention).output_shape == (784, 784)
    untransposed = attention.replace("routing[identity, computation[identity], permute21]", "computation[identity]")
    with pytest.raises(ParseError, match="cannot multiply"):
        space.parse(untransposed)


@pytest.mark.parametrize("text, position, fragment", [
    ("sequential[computation[relu]]", 28, "expected ','"),
    ("sequential[computation[relu], computation[relu], computation[relu]]", 47, "expected ']'"),
    ("computation[relu]", 0, "root cannot be a computation"),
    ("sequential[relu, computation[relu]]", 11, "wrap terminals"),
    ("routing[relu, computation[relu], identity]", 8, "prerouting function"),
    ("sequential[computation[linear(17)], computation[relu]]", 23, "computation function"),
    ("sequential[computation[relu], computation[relu]] extra", 49, "unexpected text"),
    ("sequential[computation[relu], computation[relu]", 47, "expected ']'"),
    ("routing[identity, computation[relu], col2im]", 37, "col2im cannot apply"),
    ("branching(2)[group(2,1), computation[relu], computation[relu], add(2)]", 13, "not divisible"),
    ("", 0, "expected a network"),
])
def test_parse_errors_name_the_position(space, text, position, fragment):
    with pytest.raises(ParseError) as info:
        space.parse(text)
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)


def test_long_form_shapes_are_checked_against_the_input(space):
    other = EinSpace(input_shape=(1, 24, 24))
    with pytest.raises(ParseError, match="disagrees with the inferred"):
        other.parse(LONG)
    moved = other.parse(LONG, check_shapes=False)
    assert "[576, 9]" in moved.long_string
    with pytest.raises(ParseError, match="all-or-none"):
        space.parse(LONG.replace("{'out_feature_shape': [784, 16]}", "", 1))


def _corrupt(text: str, rng: random.Random) -> str:
    alphabet = "[](){}<>,' :0123456789abcdefghijklmnopqrstuvwxyz_"
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        action = rng.random()
        i = rng.randrange(len(chars) + 1)
        if action < 0.35 and chars:
            del chars[min(i, len(chars) - 1)]
        elif action < 0.7:
            chars.insert(i, rng.choice(alphabet))
        elif chars:
            chars[min(i, len(chars) - 1)] = rng.choice(alphabet)
    if rng.random() < 0.2:
        chars = chars[: rng.randrange(len(chars) + 1)]
    return "".join(chars)


def test_malformed_strings_raise_only_parse_errors(space):
    rng = random.Random(0)
    valid = [space.sample(s) for s in range(10)] + [space.seed("vit"), space.seed("resnet18")]
    sources = [a.long_string for a in valid] + [a.short_string for a in valid]
    sources += ["(" * 5000, "sequential[" * 5000, "routing[im2col(" + "9" * 500, "x" * 10000, "{'out_feature_shape': [1]}"]
    accepted = rejected = 0
    for i in range(1000):
        text = sources[i] if i < len(sources) and i >= 24 else _corrupt(rng.choice(sources[:24]), rng)
        try:
            arch = space.parse(text)
        except ParseError:
            rejected += 1
            continue
        accepted += 1
        assert space.parse(arch.long_string).long_string == arch.long_string
    assert rejected > 800 and accepted + rejected == 1000
