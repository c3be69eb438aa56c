"""Bit-level helpers shared by the reader (validation) and the decoders.

Streams are LSB-first (docs/format.md §3): stream bit j is bit j mod 8 of
byte j // 8. Everything here is vectorised torch code that runs on the
stream's device.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional

import torch

# pvq bounds (docs/format.md §4.7).
PVQ_MAX_DIM = 256
PVQ_MAX_PULSES = 4096
PVQ_MAX_INDEX_BITS = 512
# Index widths up to this many bits decode with int64 arithmetic.
PVQ_INT64_BITS = 62

_PAD_BYTES = 8


def padded(stream: torch.Tensor) -> torch.Tensor:
    """A 1-D uint8 stream with 8 zero bytes appended, so that read_bits
    may load whole bytes past the last bit it needs."""
    return torch.cat((stream.reshape(-1), stream.new_zeros(_PAD_BYTES)))


def read_bits(stream: torch.Tensor, pos: torch.Tensor, nbits: int) -> torch.Tensor:
    """The `nbits`-bit (0..62) unsigned values starting at stream bits `pos`.

    stream: 1-D uint8 from padded(); pos: int64 tensor of bit positions (any
    shape). Returns int64 of pos's shape; bit i of a value is stream bit
    pos + i."""
    if not 0 <= nbits <= PVQ_INT64_BITS:
        raise ValueError(f"read_bits reads 0..{PVQ_INT64_BITS} bits, not {nbits}")
    result = torch.zeros_like(pos)
    done = 0
    while done < nbits:
        take = min(32, nbits - done)
        at = pos + done
        byte = at >> 3
        shift = at & 7
        word = torch.zeros_like(pos)
        for i in range((take + 7 + 7) // 8):  # bytes spanned by take bits at shift <= 7
            word |= stream[byte + i].to(torch.int64) << (8 * i)
        result |= ((word >> shift) & ((1 << take) - 1)) << done
        done += take
    return result


def unpack_bits(rows_bytes: torch.Tensor, nbits: int) -> torch.Tensor:
    """[R, B] uint8 streams -> [R, nbits] uint8 bits (0/1), LSB-first."""
    shifts = torch.arange(8, device=rows_bytes.device, dtype=torch.uint8)
    bits = (rows_bytes.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(rows_bytes.shape[0], -1)[:, :nbits]


# ---------------------------------------------------------------------------
# pvq pyramids


@functools.lru_cache(maxsize=4096)
def pyramid_size(n: int, pulses: int) -> Optional[int]:
    """N(n, K), or None when it is 2^512 or more (not allowed in a tensor).

    Caller guarantees 1 <= n <= 256 and 1 <= K <= 4096. Counts saturate at
    2^512, so this is O(n K) small-int additions."""
    cap = 1 << PVQ_MAX_INDEX_BITS
    prev = [1] + [0] * pulses  # N(0, k)
    for _ in range(n):
        row = [1] * (pulses + 1)
        for k in range(1, pulses + 1):
            v = prev[k] + prev[k - 1] + row[k - 1]
            row[k] = v if v < cap else cap
        prev = row
    return prev[pulses] if prev[pulses] < cap else None


def index_bits(count: int) -> int:
    """I(n, K): the bit length of N(n, K) - 1."""
    return (count - 1).bit_length()


@functools.lru_cache(maxsize=256)
def pyramid_table(n: int, pulses: int) -> List[List[int]]:
    """N(m, k) for m = 0..n, k = 0..K as exact Python ints (valid pyramids)."""
    table = [[1] + [0] * pulses]
    for _ in range(n):
        prev = table[-1]
        row = [1] * (pulses + 1)
        for k in range(1, pulses + 1):
            row[k] = prev[k] + prev[k - 1] + row[k - 1]
        table.append(row)
    return table


@dataclass(frozen=True)
class PvqGroupLayout:
    """Where the records of one pvq group lie in its stream (§4.7)."""

    whole: int  # whole D-vectors per row
    short_dim: int  # k_g of the short vector; 0: none
    whole_pulses: int
    short_pulses: int
    whole_bits: int  # I(D, K_g); 0 without whole vectors
    short_bits: int  # I(k_g, K'_g); 0 without a short vector
    gain_bits: int

    @property
    def row_bits(self) -> int:
        bits = self.whole * (self.whole_bits + self.gain_bits)
        if self.short_dim:
            bits += self.short_bits + self.gain_bits
        return bits

    @property
    def vectors(self) -> int:
        return self.whole + (1 if self.short_dim else 0)

    def record_bit(self, v: int) -> int:
        """First bit of vector v within a row."""
        return v * (self.whole_bits + self.gain_bits)

    def pyramid(self, v: int, dim: int):
        """(n, K, index bits, gains row) of vector v."""
        if v < self.whole:
            return dim, self.whole_pulses, self.whole_bits, 0
        return self.short_dim, self.short_pulses, self.short_bits, 1


def read_index_words(stream: torch.Tensor, pos: torch.Tensor, nbits: int,
                     word_bits: int = 31) -> List[torch.Tensor]:
    """An index of nbits bits as little-endian words of word_bits bits."""
    words = []
    for lo in range(0, nbits, word_bits):
        words.append(read_bits(stream, pos + lo, min(word_bits, nbits - lo)))
    return words


def indices_below(stream: torch.Tensor, pos: torch.Tensor, nbits: int,
                  count: int) -> torch.Tensor:
    """Whether each nbits-bit index at `pos` is below `count` (any size)."""
    if count >= 1 << nbits:
        return torch.ones(pos.shape, dtype=torch.bool, device=pos.device)
    if nbits <= PVQ_INT64_BITS:
        return read_bits(stream, pos, nbits) < count
    word_bits = 31
    words = read_index_words(stream, pos, nbits, word_bits)
    mask = (1 << word_bits) - 1
    below = torch.zeros(pos.shape, dtype=torch.bool, device=pos.device)
    undecided = torch.ones_like(below)
    for i in reversed(range(len(words))):
        limit = (count >> (word_bits * i)) & mask
        below |= undecided & (words[i] < limit)
        undecided &= words[i] == limit
    return below  # equal to count: not below
