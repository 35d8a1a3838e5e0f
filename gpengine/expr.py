"""The genome: an immutable expression tree stored as a flat prefix array.

A tree is a tuple of `Node`s in prefix (Polish) order. Every node knows its
arity, so subtree extents are found by one pass of arity counting at
construction and cached; a subtree is then a slice and replacing one is a
splice of tuples. Nodes are plain data (names and floats), so an `Expr`
pickles across processes and machines without the primitive registry.

Node kinds:
  * ``op``    - a primitive, by name, with its arity
  * ``x``     - the input
  * ``const`` - a numeric constant (finite float)
  * ``param`` - a learnable parameter slot with its initial value
"""

from __future__ import annotations

import hashlib
import math
from typing import Iterator

import attrs

OP, VAR, CONST, PARAM = "op", "x", "const", "param"
KINDS = (OP, VAR, CONST, PARAM)


def _kind(_node, _attribute, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown node kind {kind!r}")


@attrs.frozen(slots=True, cache_hash=True)  # hashed over and over as parts of tree keys
class Node:
    kind: str = attrs.field(validator=_kind)  # checked once per node, not per tree holding it
    name: str = ""
    arity: int = 0
    value: float = 0.0

    @staticmethod
    def op(name: str, arity: int) -> "Node":
        return Node(OP, name, arity)

    @staticmethod
    def const(value: float) -> "Node":
        return Node(CONST, "", 0, float(value))

    @staticmethod
    def param(init: float = 1.0) -> "Node":
        return Node(PARAM, "", 0, float(init))

    @property
    def is_terminal(self) -> bool:
        return self.arity == 0


X = Node(VAR, "x")


def _extents(nodes: tuple[Node, ...]) -> tuple[tuple[int, ...], tuple[int, ...], bool]:
    """End index (exclusive) and depth of every subtree, and whether a constant is -0.0: one backward pass."""
    n = len(nodes)
    ends = [0] * n
    depths = [0] * n
    negative_zero = False
    stack: list[int] = []  # indices of completed subtrees, the first child of the next operator on top
    # unary and binary nodes are unrolled: this runs for every tree a search makes
    for i in range(n - 1, -1, -1):
        arity = nodes[i].arity
        if arity == 0:
            ends[i] = i + 1
            depths[i] = 1
            stack.append(i)
            value = nodes[i].value
            if value == 0.0 and math.copysign(1.0, value) < 0.0:
                negative_zero = True
            continue
        if len(stack) < arity:
            raise ValueError("malformed prefix array: an operator lacks arguments")
        if arity == 1:
            k = stack[-1]
            ends[i] = ends[k]
            depths[i] = depths[k] + 1
        elif arity == 2:
            first = stack.pop()
            last = stack[-1]
            ends[i] = ends[last]
            depths[i] = 1 + (depths[first] if depths[first] > depths[last] else depths[last])
        else:
            kids = [stack.pop() for _ in range(arity - 1)] + [stack[-1]]
            ends[i] = ends[kids[-1]]
            depths[i] = 1 + max(depths[k] for k in kids)
        stack[-1] = i
    if len(stack) != 1:
        raise ValueError(f"malformed prefix array: {len(stack)} trees instead of one")
    return tuple(ends), tuple(depths), negative_zero


@attrs.frozen(cache_hash=True, repr=False)
class Expr:
    """An immutable expression tree. Build with `Expr.of(...)` or `parse(...)`."""

    nodes: tuple[Node, ...] = attrs.field(converter=tuple)
    _ends: tuple[int, ...] = attrs.field(init=False, eq=False, hash=False)
    _depths: tuple[int, ...] = attrs.field(init=False, eq=False, hash=False)
    _negative_zero: bool = attrs.field(init=False, eq=False, hash=False)
    _text: str | None = attrs.field(init=False, eq=False, hash=False, default=None)  # printed once, on demand

    def __attrs_post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("an expression needs at least one node")
        ends, depths, negative_zero = _extents(self.nodes)
        object.__setattr__(self, "_ends", ends)
        object.__setattr__(self, "_depths", depths)
        object.__setattr__(self, "_negative_zero", negative_zero)

    # -- construction -----------------------------------------------------------------
    @staticmethod
    def x() -> "Expr":
        return Expr((X,))

    @staticmethod
    def constant(value: float) -> "Expr":
        return Expr((Node.const(value),))

    @staticmethod
    def apply(name: str, *args: "Expr") -> "Expr":
        nodes: list[Node] = [Node.op(name, len(args))]
        for a in args:
            nodes.extend(a.nodes)
        return Expr(tuple(nodes))

    # -- shape ------------------------------------------------------------------------
    @property
    def root(self) -> Node:
        return self.nodes[0]

    @property
    def size(self) -> int:
        return len(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def depth(self) -> int:
        """Depth in nodes: a lone terminal has depth 1."""
        return self._depths[0]

    @property
    def has_negative_zero(self) -> bool:
        """Whether a constant is -0.0: equal to 0.0 (so such a tree equals and hashes like its
        +0.0 twin) but printed apart, which memo tables keyed by tree must not mix up."""
        return self._negative_zero

    def subtree_end(self, i: int) -> int:
        return self._ends[i]

    def subtree_depth(self, i: int) -> int:
        return self._depths[i]

    def depth_of(self, i: int) -> int:
        """How deep node i sits (the root is at level 0)."""
        level = 0
        j = 0
        while j != i:
            # walk down towards i: find the child whose extent holds i
            c = j + 1
            while not (c <= i < self._ends[c]):
                c = self._ends[c]
            j = c
            level += 1
        return level

    def subtree(self, i: int) -> "Expr":
        return Expr(self.nodes[i : self._ends[i]])

    def replace(self, i: int, sub: "Expr") -> "Expr":
        """The tree with the subtree at node i replaced by `sub`."""
        return Expr(self.nodes[:i] + sub.nodes + self.nodes[self._ends[i] :])

    def with_node(self, i: int, node: Node) -> "Expr":
        """The tree with node i alone swapped for `node` of the same arity (its children kept)."""
        return Expr(self.nodes[:i] + (node,) + self.nodes[i + 1 :])

    def children(self, i: int = 0) -> list[int]:
        """Indices of the children of node i, left to right."""
        out = []
        c = i + 1
        for _ in range(self.nodes[i].arity):
            out.append(c)
            c = self._ends[c]
        return out

    def args(self) -> list["Expr"]:
        return [self.subtree(c) for c in self.children(0)]

    def iter_subtrees(self) -> Iterator[tuple[int, "Expr"]]:
        for i in range(len(self.nodes)):
            yield i, self.subtree(i)

    # -- contents ---------------------------------------------------------------------
    def op_names(self) -> set[str]:
        return {n.name for n in self.nodes if n.kind == OP}

    @property
    def n_params(self) -> int:
        return sum(1 for n in self.nodes if n.kind == PARAM)

    def constant_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.kind == CONST]

    # -- text -------------------------------------------------------------------------
    def __str__(self) -> str:
        if self._text is None:
            from gpengine.expr_text import to_text

            object.__setattr__(self, "_text", to_text(self))
        return self._text

    def set_text(self, text: str) -> None:
        """Record the printed form when a caller built it already (it must equal `to_text(self)`)."""
        if self._text is None:
            object.__setattr__(self, "_text", text)

    def __repr__(self) -> str:
        return f"Expr({str(self)!r})"

    @property
    def structural_hash(self) -> str:
        """Stable across processes and machines (unlike `hash()`)."""
        return hashlib.blake2b(str(self).encode(), digest_size=8).hexdigest()
