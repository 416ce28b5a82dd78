"""Parse the long, short and seed forms of an architecture (seed_system.md §1.6).

The parser is iterative (no recursion limit) and linear in the string length. Anything that is
not a well-formed architecture for the input shape raises ``ParseError`` with the position.
Accepted spellings: canonical names (``im2col(3,1,1)``, ``perm(0,2,1)``, ``linear(64)``,
``dot_product(scaled)``) and the seed form's legacy ones (``im2col3k1s1p``, ``permute21``,
``linear64``, ``dot_product(scaled=True)``, ``cat(4, 2)``, ``linear_x(4)``). Each nonterminal
opens with ``[`` or with its short-form bracket and must close with the matching one; terminal
shape annotations (long form) are all-or-none.
"""
from __future__ import annotations

import re

from nas.space import grammar as G
from nas.space.tree import InferenceError, Node, infer_tree

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG_IDENTS = {"branching", "clone", "group", "add", "cat", "dot_product", "perm", "im2col",
               "linear", "linear_x"}
_SHORT_OPEN = {"sequential": "(", "branching": "{", "routing": "[", "computation": "<"}
_CLOSE = {"[": "]", "(": ")", "{": "}", "<": ">"}
_SHAPE = re.compile(r"\{\s*'out_feature_shape'\s*:\s*\[([0-9,\s]*)\]\s*\}")
_LEGACY = [
    (re.compile(r"im2col(\d+)k(\d+)s(\d+)p"), lambda m: f"im2col({m[1]},{m[2]},{m[3]})"),
    (re.compile(r"permute([1-3]{2,3})"), lambda m: "perm(0," + ",".join(m[1]) + ")"),
    (re.compile(r"linear(\d+)"), lambda m: f"linear({m[1]})"),
    (re.compile(r"linear_x\(([0-9.]+)\)"), lambda m: f"linear(x{float(m[1]):g})"),
    (re.compile(r"dot_product\(scaled=True\)"), lambda m: "dot_product(scaled)"),
    (re.compile(r"dot_product\(scaled=False\)"), lambda m: "dot_product"),
]
_MAX_ARGS = 48
_CONTEXT = 60  # characters of the string shown on either side of an error's position
_NAME_SHOWN = 40  # characters of an unexpected name echoed back
MARK = ">>>HERE>>>"  # where the error is, inside the excerpt

_DESCRIBE = {
    G.NETWORK: "a network (sequential, branching(2|4|8), routing)",
    G.MODULE: "a module (sequential, branching(2|4|8), routing, computation)",
    G.PREROUTING_FN: "a prerouting function (identity, perm(...), im2col(k,s,p))",
    G.POSTROUTING_FN: "a postrouting function (identity, perm(...), col2im)",
    G.COMPUTATION_FN: "a computation function (identity, linear(16..2048), norm, relu, softmax, pos_enc)",
}


def describe(level: str) -> str:
    if level.startswith("branching_fn"):
        k = level.rsplit("_", 1)[1]
        return f"a branching function (clone({k}), group({k},1|2|3))"
    if level.startswith("aggregation_fn"):
        k = level.rsplit("_", 1)[1]
        extra = ", dot_product, dot_product(scaled)" if k == "2" else ""
        return f"an aggregation function (add({k}), cat({k},1|2|3){extra})"
    return _DESCRIBE[level]


def _printable(text: str) -> str:
    """``text`` on one line: whitespace as spaces, other unprintable characters escaped."""
    return "".join(c if c.isprintable() else " " if c.isspace() else repr(c)[1:-1] for c in text)


def excerpt(text: str, position: int, context: int = _CONTEXT) -> str:
    """``text`` around ``position`` on one line: up to ``context`` characters on each side, cut
    ends marked ``...`` and the position marked with :data:`MARK` (a 100 kB string is not echoed)."""
    start, end = max(0, position - context), min(len(text), position + context)
    return ("..." if start else "") + _printable(text[start:position]) + MARK + \
        _printable(text[position:end]) + ("..." if end < len(text) else "")


def shown_name(name: str) -> str:
    """``repr(name)``, cut to :data:`_NAME_SHOWN` characters (with its length) when longer."""
    if len(name) <= _NAME_SHOWN:
        return repr(name)
    return f"{name[:_NAME_SHOWN]!r}... ({len(name)} characters)"


class ParseError(ValueError):
    """A string that is not an architecture. ``position`` indexes the offending character.

    The message is one line: what was wrong, the position, the string's length, and up to 60
    characters of context on each side of the position (the position marked ``>>>HERE>>>``)."""

    def __init__(self, message: str, text: str, position: int, expected: str | None = None):
        self.message, self.text, self.position, self.expected = message, text, position, expected
        super().__init__(f"{message} (at position {position} of {len(text)} characters: "
                         f"{excerpt(text, position)})")


def canonical_name(name: str) -> str:
    for pattern, repl in _LEGACY:
        match = pattern.fullmatch(name)
        if match:
            return repl(match)
    return name


class _Parser:
    def __init__(self, text: str, table: dict[str, dict[str, object]]):
        self.text, self.n, self.table = text, len(text), table
        self.annotated: list[tuple[Node, tuple[int, ...]]] = []
        self.terminals: list[Node] = []

    def fail(self, message, pos, expected=None):
        raise ParseError(message, self.text, pos, expected)

    def skip(self, pos: int) -> int:
        text, n = self.text, self.n
        while pos < n and text[pos].isspace():
            pos += 1
        return pos

    def read_name(self, pos: int, level: str) -> tuple[str, int]:
        match = _IDENT.match(self.text, pos)
        if not match:
            found = shown_name(self.text[pos]) if pos < self.n else "the end of the string"
            self.fail(f"expected {describe(level)}, found {found}", pos, describe(level))
        ident, end = match.group(), match.end()
        if ident in _ARG_IDENTS and end < self.n and self.text[end] == "(":
            close = self.text.find(")", end, end + _MAX_ARGS)
            if close < 0:
                self.fail(f"unclosed '(' after {ident!r}", end, "')'")
            return canonical_name(ident + "(" + "".join(self.text[end + 1:close].split()) + ")"), close + 1
        return canonical_name(ident), end

    def open_node(self, level: str, parent: Node | None, index: int, pos: int, stack: list) -> int:
        name, end = self.read_name(pos, level)
        if level in (G.NETWORK, G.MODULE):
            op = G.PRODUCTIONS.get(name)
            if op is None or (level == G.NETWORK and op is G.COMPUTATION):
                if op is G.COMPUTATION:
                    hint = " (the root cannot be a computation; wrap it, e.g. sequential[...])"
                elif any(name in ops for lvl, ops in self.table.items() if lvl not in (G.NETWORK, G.MODULE)):
                    hint = " (wrap terminals as computation[...])"
                else:
                    hint = ""
                self.fail(f"expected {describe(level)}, found {shown_name(name)}{hint}", pos, describe(level))
        else:
            op = self.table[level].get(name)
            if op is None:
                self.fail(f"expected {describe(level)}, found {shown_name(name)}", pos, describe(level))
        node = Node(level, parent, index, 0 if parent is None else parent.depth + 1)
        node.op, node.pos = op, pos
        if parent is not None:
            parent.children.append(node)
        end = self.skip(end)
        if op.is_terminal:
            self.terminals.append(node)
            if end < self.n and self.text[end] == "{":
                match = _SHAPE.match(self.text, end)
                if not match:
                    self.fail("malformed shape annotation: expected {'out_feature_shape': [d, ...]}", end)
                dims = tuple(int(d) for d in match[1].replace(",", " ").split())
                self.annotated.append((node, dims))
                end = match.end()
            return end
        opening = self.text[end] if end < self.n else ""
        if opening not in ("[", _SHORT_OPEN[op.kind]):
            self.fail(f"expected '[' or {_SHORT_OPEN[op.kind]!r} after {op.name}", end, "'['")
        stack.append((node, _CLOSE[opening]))
        return end + 1

    def parse(self) -> Node:
        stack: list[tuple[Node, str]] = []
        pos = self.skip(0)
        pos = self.open_node(G.NETWORK, None, 0, pos, stack)  # the root is always a production
        root = stack[0][0]
        while stack:
            node, closing = stack[-1]
            pos = self.skip(pos)
            count, needed = len(node.children), len(node.op.child_levels)
            if count == needed:
                if pos >= self.n or self.text[pos] != closing:
                    self.fail(f"expected {closing!r} closing {node.op.name} ({needed} children)", pos, repr(closing))
                stack.pop()
                pos += 1
                continue
            if count:
                if pos >= self.n or self.text[pos] != ",":
                    self.fail(f"expected ',': {node.op.name} takes {needed} children, got {count}", pos, "','")
                pos = self.skip(pos + 1)
            pos = self.open_node(node.op.child_levels[count], node, count, pos, stack)
        pos = self.skip(pos)
        if pos != self.n:
            self.fail("unexpected text after the architecture", pos, "the end of the string")
        if self.annotated and len(self.annotated) != len(self.terminals):
            annotated = {id(node) for node, _ in self.annotated}
            missing = next(t for t in self.terminals if id(t) not in annotated)
            self.fail("shape annotations are all-or-none; this terminal has none", missing.pos)
        return root


def parse_tree(text: str, table, root_state, cfg, check_shapes: bool = True) -> Node:
    """Parse ``text`` into an inferred tree for ``root_state``.

    Validity is *lenient* (``Op.check_lenient``): a tree is accepted exactly when the paper's
    code could run it, so that published archives load in full. This differs from the hard
    rules only for col2im, which the paper ran as a reshape wherever L*D is a multiple of its
    grid's H'W' (``ops.Col2ImOp``). The same rule applies whether or not ``check_shapes`` is
    set: ``check_shapes`` only compares a long string's annotations with the inferred shapes,
    and an archive written here (whose annotations are ours) must re-load with the default.
    A long string written by the paper's code for such a reshape carries the paper's inferred,
    not its run-time, shape there, and therefore needs ``check_shapes=False``. Sampling and
    mutation keep the grammar's strict rules (their distributions are unchanged).
    """
    if not isinstance(text, str):
        raise ParseError(f"expected a string, got {type(text).__name__}", str(text), 0)
    parser = _Parser(text, table)
    root = parser.parse()
    try:
        infer_tree(root, root_state, cfg, lenient=True)
    except InferenceError as err:
        raise ParseError(f"{err.node.op.name} cannot apply here: {err.reason}", text, err.node.pos) from None
    if check_shapes:
        for node, dims in parser.annotated:
            if tuple(node.out.shape[1:]) != dims:
                raise ParseError(
                    f"annotated shape {list(dims)} disagrees with the inferred {list(node.out.shape[1:])} "
                    f"for input {list(root_state.shape[1:])} (pass check_shapes=False to re-infer)",
                    text, node.pos)
    return root
