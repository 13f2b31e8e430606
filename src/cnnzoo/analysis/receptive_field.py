"""Receptive fields, propagated tensor by tensor through a traced forward pass.

Along each spatial axis a tensor carries a :class:`Span`: the input pixels ``[lo, hi]`` that its
first position (index 0) depends on, and the ``jump`` between the fields of neighbouring positions
(the effective stride). Size and start offset follow: ``size = hi - lo + 1`` and ``start`` is the
centre ``(lo + hi) / 2``. Coordinates include zero padding, so a size may exceed the image: that is
the usual "theoretical" receptive field (Araujo et al., https://distill.pub/2019/computing-receptive-fields/).

A sliding window (convolution, pooling) of kernel ``k``, stride ``s``, padding ``p`` and dilation
``d`` gives ``size' = size + (k-1)·d·jump``, ``jump' = jump·s``, ``start' = start + ((k-1)/2·d - p)·jump``.
Where branches meet (a residual add, an inception or dense concatenation) the field is the union of
the branches' fields, i.e. the largest. After global pooling, flattening or a linear layer every
output sees the whole map: the field is marked ``whole`` and spans the union of all positions.
A spatial map gated by a globally pooled branch (squeeze-and-excitation) keeps its local field and is
marked ``context``: it also sees the whole image, through that gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

Number = int | Fraction


def _plain(x: Number) -> int | float:
    return int(x) if Fraction(x).denominator == 1 else float(x)


@dataclass(frozen=True)
class Span:
    """The field of position 0 along one axis, ``[lo, hi]`` in input pixels, and the jump to the next."""

    lo: Number
    hi: Number
    jump: Number

    @property
    def size(self) -> int | float:
        return _plain(self.hi - self.lo + 1)

    @property
    def start(self) -> int | float:
        """Centre of the first position's field (half-integers for even kernels)."""
        return _plain(Fraction(self.lo + self.hi) / 2)

    def window(self, kernel: int, stride: int, padding: int, dilation: int = 1) -> Span:
        return Span(self.lo - padding * self.jump,
                    self.hi + ((kernel - 1) * dilation - padding) * self.jump,
                    self.jump * stride)

    def extent(self, n: int) -> Span:
        """The union of the fields of all ``n`` positions."""
        return Span(self.lo, self.hi + (n - 1) * self.jump, self.jump * n)


@dataclass(frozen=True)
class ReceptiveField:
    """One :class:`Span` per spatial axis (H, W for images); ``whole`` once positions see all of them."""

    spans: tuple[Span, ...]
    whole: bool = False
    context: bool = False

    @classmethod
    def pixel(cls, ndim: int) -> ReceptiveField:
        """The field of an input pixel: itself."""
        return cls(tuple(Span(0, 0, 1) for _ in range(ndim)))

    @property
    def size(self) -> tuple[int | float, ...]:
        return tuple(s.size for s in self.spans)

    @property
    def jump(self) -> tuple[int | float, ...]:
        return tuple(_plain(s.jump) for s in self.spans)

    @property
    def start(self) -> tuple[int | float, ...]:
        return tuple(s.start for s in self.spans)

    def window(self, kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
               dilation: Sequence[int]) -> ReceptiveField:
        return ReceptiveField(tuple(s.window(k, st, p, d)
                                    for s, k, st, p, d in zip(self.spans, kernel, stride, padding, dilation)),
                              context=self.context)

    def shift(self, before: Sequence[int]) -> ReceptiveField:
        """Padding ``before[i]`` pixels at the start of axis ``i``: position 0 moves left."""
        return ReceptiveField(tuple(Span(s.lo - b * s.jump, s.hi - b * s.jump, s.jump)
                                    for s, b in zip(self.spans, before)), self.whole, self.context)

    def rescale(self, in_sizes: Sequence[int], out_sizes: Sequence[int], taps: int = 1) -> ReceptiveField:
        """Resampling ``in_sizes`` to ``out_sizes`` (upsampling): jumps scale by in/out; ``taps`` neighbours read."""
        return ReceptiveField(tuple(Span(s.lo, s.hi + (taps - 1) * s.jump, s.jump * Fraction(n, m))
                                    for s, n, m in zip(self.spans, in_sizes, out_sizes)), context=self.context)

    def adaptive(self, in_sizes: Sequence[int], out_sizes: Sequence[int]) -> ReceptiveField:
        """Adaptive pooling: bin ``i`` covers ``[floor(i·n/m), ceil((i+1)·n/m))``; the widest bin is reported."""
        spans = []
        for s, n, m in zip(self.spans, in_sizes, out_sizes):
            if n % m == 0:
                spans.append(s.window(n // m, n // m, 0))
            else:
                widest = max(-(-(i + 1) * n // m) - i * n // m for i in range(m))
                spans.append(Span(s.lo, s.hi + (widest - 1) * s.jump, s.jump * Fraction(n, m)))
        return ReceptiveField(tuple(spans), context=self.context)

    def collapse(self, sizes: Sequence[int]) -> ReceptiveField:
        """Every output sees every position of a map of ``sizes`` (global pooling, flatten, linear)."""
        if self.whole:
            return self
        return ReceptiveField(tuple(s.extent(n) for s, n in zip(self.spans, sizes)), whole=True)


def union(fields: Iterable[ReceptiveField]) -> ReceptiveField | None:
    """The field of a tensor computed from several: per axis the widest ``[lo, hi]`` and jump.

    Whole-map fields combined with local ones (a gate broadcast over a map) leave the local field
    and set ``context``.
    """
    fields = list(fields)
    if not fields:
        return None
    local = [f for f in fields if not f.whole]
    context = any(f.context for f in fields) or (bool(local) and len(local) < len(fields))
    chosen = local or fields
    ndim = min(len(f.spans) for f in chosen)
    spans = tuple(
        Span(min(f.spans[i].lo for f in chosen), max(f.spans[i].hi for f in chosen),
             max(f.spans[i].jump for f in chosen))
        for i in range(ndim)
    )
    return ReceptiveField(spans, whole=not local, context=context and bool(local))
