"""Terminal operations: name, shape inference, validity and the module they compile to
(seed_system.md §1.3).

Validity comes in three strengths. ``check(state, cfg, soft=False)`` is the *hard* rule set
(ranks, divisibility, matching shapes, col2im folding exactly its last im2col's H'xW' grid);
this is what a mutant must satisfy. ``soft=True`` adds the grammar's mode rules (im2col only in
"im" mode with H,W >= k; col2im only in "col" mode), which the paper's code applies while
sampling but not on replay. ``check_lenient(state, cfg)`` holds exactly when the paper's code
could *run* the op, which is what reading a string needs (see ``Col2ImOp``); it differs from
the hard rules only for col2im.

(Over 400 lines: 16 classes, one per terminal operation of the grammar with its shape rule,
kept in one file as the grammar's table of operations, seed_system.md §1.3.)
"""
from __future__ import annotations

from math import prod

from torch import nn

from nas.space import modules as M
from nas.space.state import TensorState


class Op:
    """A terminal. Subclasses override what differs from a shape-preserving pass-through."""

    __slots__ = ("name",)
    is_terminal = True
    kind = "op"
    sampleable = True
    allocates = True  # whether its output is a new tensor (for the memory estimate)

    def __init__(self, name: str):
        self.name = name

    def check(self, st: TensorState, cfg, soft: bool) -> str | None:
        return None

    def check_lenient(self, st: TensorState, cfg) -> str | None:
        """None when the paper's code could run this op here (reading strings and archives)."""
        return self.check(st, cfg, False)

    def infer(self, st: TensorState, cfg) -> TensorState:
        return st

    def build(self, inp: TensorState, out: TensorState, cfg) -> nn.Module:
        raise NotImplementedError(self.name)

    def param_count(self, inp: TensorState, cfg) -> int:
        return 0

    def work_bytes(self, inp: TensorState) -> int:
        """Batch-1 bytes of the largest temporary this op needs (the build-safety check)."""
        return 0

    def __repr__(self) -> str:
        return self.name


# --------------------------------------------------------------------------- branching fns
class CloneOp(Op):
    __slots__ = ("k",)
    kind = "clone"
    allocates = False

    def __init__(self, k: int):
        super().__init__(f"clone({k})")
        self.k = k

    def infer(self, st, cfg):
        return st.evolve(branching_factor=self.k)

    def build(self, inp, out, cfg):
        return M.Clone(self.k)


class GroupOp(Op):
    __slots__ = ("k", "dim")
    kind = "group"
    allocates = False

    def __init__(self, k: int, dim: int):
        super().__init__(f"group({k},{dim})")
        self.k, self.dim = k, dim

    def check(self, st, cfg, soft):
        shape, d, k = st.shape, self.dim, self.k
        if len(shape) <= d:
            return f"needs rank > {d}, got shape {list(shape[1:])}"
        if shape[d] < k or shape[d] % k:
            return f"dim {d} of size {shape[d]} is not divisible into {k} groups"
        return None

    def infer(self, st, cfg):
        shape = list(st.shape)
        shape[self.dim] //= self.k
        return st.evolve(shape=tuple(shape), branching_factor=self.k)

    def build(self, inp, out, cfg):
        return M.Group(self.k, self.dim)


# ------------------------------------------------------------------------- aggregation fns
class AddOp(Op):
    __slots__ = ("k",)
    kind = "add"

    def __init__(self, k: int):
        super().__init__(f"add({k})")
        self.k = k

    def check(self, st, cfg, soft):
        if st.other_shape != st.shape:
            return f"branch shapes differ: {_fmt(st.shape)} vs {_fmt(st.other_shape)}"
        return None

    def build(self, inp, out, cfg):
        return M.Add()


class CatOp(Op):
    __slots__ = ("k", "dim")
    kind = "cat"

    def __init__(self, k: int, dim: int):
        super().__init__(f"cat({k},{dim})")
        self.k, self.dim = k, dim

    def check(self, st, cfg, soft):
        a, b, d = st.shape, st.other_shape, self.dim
        if b is None or len(a) <= d or len(b) <= d:
            return f"needs two branches of rank > {d}"
        if len(a) != len(b) or any(x != y for i, (x, y) in enumerate(zip(a, b, strict=True)) if i != d):
            return f"branch shapes {_fmt(a)} and {_fmt(b)} differ outside dim {d}"
        return None

    def infer(self, st, cfg):
        shape = list(st.shape)
        shape[self.dim] = shape[self.dim] + st.other_shape[self.dim] if self.k == 2 else shape[self.dim] * self.k
        return st.evolve(shape=tuple(shape))

    def build(self, inp, out, cfg):
        return M.Cat(self.dim)


class DotProductOp(Op):
    __slots__ = ("scaled",)
    kind = "dot_product"

    def __init__(self, scaled: bool):
        super().__init__("dot_product(scaled)" if scaled else "dot_product")
        self.scaled = scaled

    def check(self, st, cfg, soft):
        a, b = st.shape, st.other_shape
        if b is None or len(a) < 2 or len(b) < 2 or a[-1] != b[-2] or a[:-2] != b[:-2]:
            return f"cannot multiply {_fmt(a)} by {_fmt(b)}"
        return None

    def infer(self, st, cfg):
        return st.evolve(shape=st.shape[:-1] + (st.other_shape[-1],))

    def build(self, inp, out, cfg):
        return M.DotProduct(self.scaled)


# ----------------------------------------------------------------------------- routing fns
class IdentityOp(Op):
    __slots__ = ()
    kind = "identity"
    allocates = False

    def __init__(self):
        super().__init__("identity")

    def build(self, inp, out, cfg):
        return nn.Identity()


class PermOp(Op):
    __slots__ = ("dims",)
    kind = "perm"
    allocates = False

    def __init__(self, dims: tuple[int, ...]):
        super().__init__("perm(" + ",".join(map(str, dims)) + ")")
        self.dims = dims

    def check(self, st, cfg, soft):
        if len(st.shape) != len(self.dims):
            return f"needs rank {len(self.dims)}, got shape {_fmt(st.shape)}"
        return None

    def infer(self, st, cfg):
        return st.evolve(shape=tuple(st.shape[d] for d in self.dims))

    def build(self, inp, out, cfg):
        return M.Permute(self.dims)


class Im2ColOp(Op):
    __slots__ = ("kernel", "stride", "padding")
    kind = "im2col"

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__(f"im2col({kernel},{stride},{padding})")
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def out_hw(self, st):
        _, _, h, w = st.shape
        k, s, p = self.kernel, self.stride, self.padding
        return (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1

    def check(self, st, cfg, soft):
        if len(st.shape) != 4:
            return f"needs a rank-4 image tensor, got shape {_fmt(st.shape)}"
        h, w = st.shape[2], st.shape[3]
        if soft:
            if st.mode != "im":
                return "the tensor is in 'col' mode"
            if h < self.kernel or w < self.kernel:
                return f"image {h}x{w} smaller than the kernel {self.kernel}"
        elif h + 2 * self.padding < self.kernel or w + 2 * self.padding < self.kernel:
            return f"image {h}x{w} smaller than the padded kernel {self.kernel}"
        return None

    def infer(self, st, cfg):
        oh, ow = self.out_hw(st)
        channels = st.shape[1]
        return st.evolve(shape=(1, oh * ow, self.kernel * self.kernel * channels),
                         mode="col", last_im_shape=(oh, ow))

    def build(self, inp, out, cfg):
        return M.Im2Col(self.kernel, self.stride, self.padding)

    def work_bytes(self, inp):
        oh, ow = self.out_hw(inp)
        return 4 * oh * ow * self.kernel * self.kernel * inp.shape[1]


class Col2ImOp(Op):
    """(B, L, D) -> (B, L*D/(H'*W'), H', W') with (H', W') the grid of the latest im2col on the path.

    The paper's module is a reshape at run time, ``x.permute(0, 2, 1).reshape(B, -1, H', W')``
    (seed_system.md §1.3), so it runs wherever L*D is a multiple of H'*W'; its grammar only
    *allows* col2im where L == H'*W' (then the output is (B, D, H', W'), a true fold).

    - Sampling (``soft``) and mutation (the hard rules) keep the grammar's L == H'*W', so the
      sampling and mutation distributions are those of the paper's grammar. (Only a parent that
      was itself read leniently has its mutants replayed leniently, ``EinSpace.mutate``.)
    - Reading a string (``check_lenient``: ``EinSpace.parse``, with or without
      ``check_shapes``) accepts every col2im the paper's code could run: archives hold
      architectures it built through mutation replays, which never re-checked validity. Such a
      fold scrambles positions into channels exactly as the paper's reshape did, and the shape
      inferred here is the one that ran. (The paper's own *inferred* shape there was
      (B, D, H', W'), disagreeing with what ran; its long strings carry that annotation, so they
      need ``check_shapes=False``.)
    - ``infer`` and the module follow the reshape in both cases, so an exact fold is unchanged.

    Not reproduced: the paper's ``RoutingModule`` re-targets a col2im that closes a routing
    opened by an im2col to *that* im2col's grid even when another im2col on the inner path set
    ``last_im_shape``; such trees never arise from sampling.
    """

    __slots__ = ()
    kind = "col2im"
    allocates = False

    def __init__(self):
        super().__init__("col2im")

    def check(self, st, cfg, soft):
        reason = self._check_foldable(st, soft)
        if reason is None:
            oh, ow = st.last_im_shape
            if st.shape[1] != oh * ow:
                return f"{st.shape[1]} positions cannot fold into the last im2col's {oh}x{ow} grid"
        return reason

    def check_lenient(self, st, cfg):
        reason = self._check_foldable(st, False)
        if reason is None:
            oh, ow = st.last_im_shape
            if (st.shape[1] * st.shape[2]) % (oh * ow):
                return (f"{st.shape[1]}x{st.shape[2]} elements cannot reshape onto the last im2col's "
                        f"{oh}x{ow} grid")
        return reason

    @staticmethod
    def _check_foldable(st, soft):
        if len(st.shape) != 3:
            return f"needs a rank-3 (B,L,D) tensor, got shape {_fmt(st.shape)}"
        if soft and st.mode != "col":
            return "the tensor is in 'im' mode"
        if st.last_im_shape is None:
            return "no im2col precedes it on this path"
        return None

    def infer(self, st, cfg):
        oh, ow = st.last_im_shape
        _, positions, features = st.shape
        channels = positions * features // (oh * ow)  # = features for an exact fold
        # The paper's code leaves the mode at "col" (seed_system.md §10.1).
        return st.evolve(shape=(1, channels, oh, ow), mode="col" if cfg.legacy_col2im_mode else "im")

    def build(self, inp, out, cfg):
        return M.Col2Im(*inp.last_im_shape)


# ------------------------------------------------------------------------- computation fns
class LinearOp(Op):
    __slots__ = ("width",)
    kind = "linear"

    def __init__(self, width: int):
        super().__init__(f"linear({width})")
        self.width = width

    def out_features(self, in_features: int) -> int:
        return self.width

    def infer(self, st, cfg):
        return st.evolve(shape=st.shape[:-1] + (self.out_features(st.shape[-1]),))

    def build(self, inp, out, cfg):
        return nn.Linear(inp.shape[-1], out.shape[-1])

    def param_count(self, inp, cfg):
        fan_in = inp.shape[-1]
        return fan_in * self.out_features(fan_in) + self.out_features(fan_in)

    def work_bytes(self, inp):
        return 4 * inp.shape[-1] * self.out_features(inp.shape[-1])


class ScaledLinearOp(LinearOp):
    """linear(x f): width = f * input width. Seed-only (the MLP-Mixer's token mixing); the
    grammar never samples it, but parsed and mutated trees may keep it (seed_system.md §10.9)."""

    __slots__ = ("factor",)
    sampleable = False

    def __init__(self, factor: float):
        Op.__init__(self, f"linear(x{factor:g})")
        self.factor = factor
        self.width = None

    def out_features(self, in_features):
        return max(1, int(round(in_features * self.factor)))

    def check(self, st, cfg, soft):
        if st.shape[-1] * self.factor < 1:
            return f"width {st.shape[-1]} x {self.factor:g} is below 1"
        return None


class NormOp(Op):
    __slots__ = ()
    kind = "norm"

    def __init__(self):
        super().__init__("norm")

    def check(self, st, cfg, soft):
        if len(st.shape) not in (2, 3, 4):
            return f"no norm for rank {len(st.shape)}"
        return None

    def _features(self, inp, cfg):
        rank = len(inp.shape)
        if rank == 3 and cfg.rank3_norm == "batchnorm_seq":
            return inp.shape[1]
        return inp.shape[-1] if rank in (2, 3) else inp.shape[1]

    def build(self, inp, out, cfg):
        rank, n = len(inp.shape), self._features(inp, cfg)
        if rank == 4:
            return nn.BatchNorm2d(n)
        if rank == 3 and cfg.rank3_norm == "batchnorm_seq":
            return nn.BatchNorm1d(n)
        return nn.LayerNorm(n)

    def param_count(self, inp, cfg):
        return 2 * self._features(inp, cfg)


class ReluOp(Op):
    __slots__ = ()
    kind = "relu"

    def __init__(self):
        super().__init__("relu")

    def build(self, inp, out, cfg):
        return nn.ReLU()


class SoftmaxOp(Op):
    __slots__ = ()
    kind = "softmax"

    def __init__(self):
        super().__init__("softmax")

    def build(self, inp, out, cfg):
        return nn.Softmax(dim=-1)


class PosEncOp(Op):
    __slots__ = ()
    kind = "pos_enc"

    def __init__(self):
        super().__init__("pos_enc")

    def build(self, inp, out, cfg):
        return M.PositionalEncoding(inp.shape[1:])

    def param_count(self, inp, cfg):
        return prod(inp.shape[1:])


def _fmt(shape) -> str:
    return "None" if shape is None else str(list(shape[1:]))
