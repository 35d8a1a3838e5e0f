"""Readable infix text for expressions, and a safe parser that reads it back.

`to_text` prints `sin(x) + x`; `parse` reads it back exactly (round trip on
structure, constants via `repr` so floats are exact). The parser is a small
recursive-descent reader over a fixed grammar; it never calls `eval`.

Infix spellings are a core convention shared by every primitive set:
`add` +, `sub` -, `mul` *, `div` /, `pow` ** (or ^), `neg` unary -. What
those names compute is up to the set (for example GAAF's `div` adds 1e-8 to
the denominator, `arith`'s is protected division).

Literal rule: a minus sign directly followed by a number is a negative
constant (`x * -0.5`), unless the number is the base of `**`; the negation
of a constant prints as `-(0.5)`.
"""

from __future__ import annotations

import math
import re
import sys
from typing import TYPE_CHECKING, Sequence

from gpengine.errors import ParseError, did_you_mean
from gpengine.expr import CONST, PARAM, VAR, Expr, Node

if TYPE_CHECKING:
    from primitives.registry import PrimitiveSet

BINARY_INFIX = {"add": ("+", 1), "sub": ("-", 1), "mul": ("*", 2), "div": ("/", 2), "pow": ("**", 4)}
NEG_PREC = 3
ATOM_PREC = 5
PARAM_NAME = "param"
VAR_NAME = "x"

# -- printing ---------------------------------------------------------------------------


def _const_text(v: float) -> str:
    return repr(float(v))


def format_node(node: Node, kids: Sequence[tuple[str, int, bool]]) -> tuple[str, int]:
    """Text and precedence of `node` over its children's (text, precedence, is-constant).

    One level of printing, shared by `to_text` and the canonical form (which
    builds its sort keys bottom-up and must print exactly as `to_text` does).
    """
    kind = node.kind
    if kind == VAR:
        return VAR_NAME, ATOM_PREC
    if kind == CONST:
        v = node.value
        return _const_text(v), (NEG_PREC if v < 0 or str(v).startswith("-") else ATOM_PREC)
    if kind == PARAM:
        return f"{PARAM_NAME}({_const_text(node.value)})", ATOM_PREC
    if node.name == "neg" and node.arity == 1:
        ((text, prec, is_const),) = kids
        if prec < NEG_PREC or is_const:
            text = f"({text})"
        return f"-{text}", NEG_PREC
    if node.name in BINARY_INFIX and node.arity == 2:
        sym, prec = BINARY_INFIX[node.name]
        (lt, lp, _), (rt, rp, _) = kids
        if sym == "**":  # right-associative, binds tighter than unary minus
            if lp <= prec:
                lt = f"({lt})"
            if rp < prec:
                rt = f"({rt})"
        else:
            if lp < prec:
                lt = f"({lt})"
            if rp <= prec:
                rt = f"({rt})"
        return f"{lt} {sym} {rt}", prec
    return f"{node.name}({', '.join(k[0] for k in kids)})", ATOM_PREC


def to_text(expr: Expr) -> str:
    """Printed bottom-up over the prefix array with a stack, not by recursion: the parser reads a
    chain such as `x + x + ... + x` in a loop, into a tree deeper than Python's recursion limit."""
    stack: list[tuple[str, int, bool]] = []
    pop = stack.pop
    for node in reversed(expr.nodes):
        kids = [pop() for _ in range(node.arity)] if node.arity else ()  # first child on top
        text, prec = format_node(node, kids)
        stack.append((text, prec, node.kind == CONST))
    return stack[0][0]


# -- parsing ----------------------------------------------------------------------------

#: recursion limit for a second try at text nested past the default's reach (about 190 levels); about
#: 4,000 levels then parse, far beyond any search's max_depth
_DEEP_RECURSION_LIMIT = 20_000

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op>\*\*|\^|[-+*/(),]))"
)


def _tokenize(text: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) for every token; raises at the first bad character."""
    tokens = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos].isspace():
            pos += 1
            continue
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ParseError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup
        start = m.start(kind)
        tokens.append((kind, m.group(kind), start, m.end()))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, text: str, pset: "PrimitiveSet | None"):
        self.text = text
        self.pset = pset
        self.tokens = _tokenize(text)
        self.i = 0

    # token helpers
    def peek(self, k: int = 0):
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else ("end", "", len(self.text), len(self.text))

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, value: str):
        tok = self.take()
        if tok[1] != value:
            what = "end of input" if tok[0] == "end" else repr(tok[1])
            raise ParseError(f"expected {value!r} but found {what}", self.text, tok[2])
        return tok

    def fail(self, message: str, tok) -> ParseError:
        return ParseError(message, self.text, tok[2])

    def number(self, tok, sign: float = 1.0) -> Node:
        value = sign * float(tok[1])
        if not math.isfinite(value):  # "1e999": a constant must be finite (and print back)
            raise self.fail(f"number {tok[1]!r} is out of range", tok)
        return Node.const(value)

    def op(self, name: str, arity: int, tok) -> Node:
        if self.pset is not None:
            prim = self.pset.get(name)
            if prim is None:
                shown = f"operator {tok[1]!r} ({name})" if tok[1] != name else f"primitive {name!r}"
                raise self.fail(
                    f"{shown} is not in primitive set {self.pset.name!r}{did_you_mean(name, self.pset.names())} "
                    f"(known: {', '.join(sorted(self.pset.names()))})",
                    tok,
                )
            if prim.arity != arity:
                raise self.fail(f"{name} takes {prim.arity} argument(s), got {arity}", tok)
        return Node.op(name, arity)

    # grammar
    def parse(self) -> Expr:
        if not self.tokens:
            raise ParseError("empty expression", self.text, 0)
        nodes = self.expr()
        tok = self.peek()
        if tok[0] != "end":
            raise self.fail(f"unexpected {tok[1]!r}", tok)
        return Expr(tuple(nodes))

    def expr(self) -> list[Node]:
        left = self.term()
        while self.peek()[1] in ("+", "-"):
            tok = self.take()
            right = self.term()
            left = [self.op("add" if tok[1] == "+" else "sub", 2, tok)] + left + right
        return left

    def term(self) -> list[Node]:
        left = self.unary()
        while self.peek()[1] in ("*", "/"):
            tok = self.take()
            right = self.unary()
            left = [self.op("mul" if tok[1] == "*" else "div", 2, tok)] + left + right
        return left

    def _negative_literal(self) -> bool:
        minus, num, after = self.peek(), self.peek(1), self.peek(2)
        return (
            minus[1] == "-"
            and num[0] == "num"
            and num[2] == minus[3]  # adjacent: "-0.5", not "- 0.5"
            and after[1] not in ("**", "^")
        )

    def unary(self) -> list[Node]:
        tok = self.peek()
        if self._negative_literal():
            self.take()
            num = self.take()
            return [self.number(num, -1.0)]
        if tok[1] == "-":
            self.take()
            return [self.op("neg", 1, tok)] + self.unary()
        if tok[1] == "+":
            raise self.fail("unary plus is not supported", tok)
        return self.power()

    def power(self) -> list[Node]:
        base = self.atom()
        if self.peek()[1] in ("**", "^"):
            tok = self.take()
            exponent = self.unary()
            return [self.op("pow", 2, tok)] + base + exponent
        return base

    def atom(self) -> list[Node]:
        tok = self.take()
        kind, text = tok[0], tok[1]
        if kind == "num":
            return [self.number(tok)]
        if kind == "name":
            if self.peek()[1] == "(":
                if text == PARAM_NAME:
                    return [self.param_slot()]
                self.take()
                args: list[list[Node]] = []
                if self.peek()[1] != ")":
                    args.append(self.expr())
                    while self.peek()[1] == ",":
                        self.take()
                        args.append(self.expr())
                self.expect(")")
                if not args:  # a primitive has arity >= 1; "f()" is no tree
                    raise self.fail(f"{text}() needs at least one argument", tok)
                out = [self.op(text, len(args), tok)]
                for a in args:
                    out.extend(a)
                return out
            if text == VAR_NAME:
                return [Node(VAR, VAR_NAME)]
            raise self.fail(f"unknown name {text!r} (the only variable is 'x')", tok)
        if text == "(":
            if self._negative_literal() and self.peek(2)[1] == ")":
                self.take()
                num = self.take()
                self.take()
                return [self.number(num, -1.0)]
            inner = self.expr()
            self.expect(")")
            return inner
        if kind == "end":
            raise self.fail("unexpected end of input", tok)
        raise self.fail(f"unexpected {text!r}", tok)

    def param_slot(self) -> Node:
        self.expect("(")
        sign = 1.0
        if self.peek()[1] == "-":
            self.take()
            sign = -1.0
        tok = self.take()
        if tok[0] != "num":
            found = "end of input" if tok[0] == "end" else repr(tok[1])
            raise self.fail(f"param(...) takes a number: its initial value, found {found}", tok)
        self.expect(")")
        return Node.param(self.number(tok, sign).value)


def parse(text: str, pset: "PrimitiveSet | None" = None) -> Expr:
    """Read an expression. With `pset`, names and arities are checked against it."""
    if not isinstance(text, str):
        raise ParseError(f"expected a string, got {type(text).__name__}")
    try:
        return _Parser(text, pset).parse()
    except RecursionError:  # the grammar recurses, a few frames per nesting level
        pass
    # Deep text is rare but legal: a search with a large max_depth prints trees that must read back
    # (journal, resume). Python's own calls do not use the C stack in 3.11+, so a higher limit is safe.
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, _DEEP_RECURSION_LIMIT))
        return _Parser(text, pset).parse()
    except RecursionError:
        raise ParseError("expression nested too deeply", text) from None
    finally:
        sys.setrecursionlimit(limit)
