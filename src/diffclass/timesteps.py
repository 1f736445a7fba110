"""The nested timestep grid every strategy draws its slots from, and the one spelling of a timestep range."""

from __future__ import annotations

import math

from diffclass.errors import DiffclassError

MAX_GRID_SIZE = 4096  # slots past the size revisit timesteps with fresh noise, so a larger grid buys nothing


class TimestepGrid:
    """`size` evenly spaced timesteps over [t_min, t_max], ordered so that every prefix is spread too.

    Slot i uses timestep `timesteps[i % size]`; the order is the bit-reversal permutation, so the first 2^k slots
    are an evenly spaced grid of their own and a strategy asking for more slots only adds timesteps. Slots past
    `size` revisit the same timesteps with fresh noise (several noise samples per timestep).
    """

    def __init__(self, t_min: int = 0, t_max: int = 999, size: int = 64):
        if not 0 <= t_min <= t_max:
            raise DiffclassError(f"bad timestep range [{t_min}, {t_max}]")
        if not 1 <= size <= MAX_GRID_SIZE:
            raise DiffclassError(f"timestep grid size must be in [1, {MAX_GRID_SIZE}], got {size}")
        self.t_min, self.t_max, self.size = t_min, t_max, size
        width = (t_max - t_min + 1) / size
        bits = max(1, math.ceil(math.log2(size)))
        order = [j for j in sorted(range(2**bits), key=lambda j: int(f"{j:0{bits}b}"[::-1], 2)) if j < size]
        self.timesteps = [min(t_max, t_min + int((j + 0.5) * width)) for j in order]

    @classmethod
    def parse(cls, text: str, size: int = 64) -> TimestepGrid:
        """`MIN-MAX`, e.g. `0-999`: the one syntax of a timestep range (`--timesteps` and the `t=` option)."""
        try:
            t_min, t_max = (int(v) for v in str(text).strip().split("-"))
        except ValueError:
            raise DiffclassError(f"a timestep range is MIN-MAX (two integers), e.g. 0-999; got {text!r}") from None
        return cls(t_min, t_max, size)

    def timestep(self, slot: int) -> int:
        return self.timesteps[slot % self.size]

    @property
    def range_text(self) -> str:
        """The range as the `t=MIN-MAX` strategy option spells it."""
        return f"{self.t_min}-{self.t_max}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TimestepGrid) and (self.t_min, self.t_max, self.size) == (
            other.t_min,
            other.t_max,
            other.size,
        )

    def __hash__(self) -> int:
        return hash((self.t_min, self.t_max, self.size))

    def __repr__(self) -> str:
        return f"TimestepGrid(t_min={self.t_min}, t_max={self.t_max}, size={self.size})"
