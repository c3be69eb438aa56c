"""Decoders of the glvq packed format v1 (docs/format.md §4) in torch.

`dequantize(qt)` turns a QuantizedTensor into its dense [rows, cols]
weights on the device its components live on (CPU or CUDA, the same code).
It follows the reference decoder (`DequantizeRef`, common/packed/):

- glvq, rtn, e8p, pvq evaluate §4.1-§4.3/§4.7 in float64, in the order the
  format states (lattice sums over j in increasing order, companding with
  expm1/log1p);
- trellis evaluates §4.8 in float32 exactly as stated;
- with `rht_seed` (§4.4) the float64 matrix goes through the inverse
  randomized Hadamard transform (§4.5) before rounding;
- the result is rounded once to float32 (the format's decoded weights) and,
  for another `dtype`, converted from float32 (as `glvq dequantize --dtype`).

On the CPU the result equals the C++ reference except where torch's
vectorised expm1 and glibc's differ in the last bit of a double, which can
move a companded weight by one float32 ulp.

All work is vectorised over rows and codes; Python loops run over groups,
vector positions, Hadamard stages and pyramid positions only. pvq indices
wider than 62 bits (very large pyramids, e.g. D = 64 at 3+ bits) are decoded
with exact Python integers, one record at a time: correct but slow.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import _bits
from .packed import (FormatError, QuantizedTensor, _check_component_set, _check_scalars,
                     pvq_layouts)

_M64 = (1 << 64) - 1


def dequantize(qt: QuantizedTensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Dense weights [rows, cols] of a valid quantized tensor, as `dtype`.

    Decodes on qt's device. The tensor must be valid (PackedModel.open
    checks every tensor; use glvq.packed.validate_quantized for one built by
    hand). FormatError if a weight decodes to a non-finite value."""
    _check_scalars(qt)
    _check_component_set(qt)
    decode = _DECODERS[qt.method]
    w = decode(qt)
    seed = qt.components.get("rht_seed")
    if seed is not None:
        seed_row, seed_col = (int(v) & _M64 for v in seed.tolist())
        w = rht_inverse(w.to(torch.float64), seed_row, seed_col)
    w = w.to(torch.float32)
    bad = ~torch.isfinite(w)
    if bool(bad.any()):
        r, c = (int(v) for v in torch.nonzero(bad)[0])
        raise FormatError(f"quantized tensor '{qt.name}': the weight at row {r}, column {c} "
                          f"decodes to {float(w[r, c])}")
    return w if dtype == torch.float32 else w.to(dtype)


# ---------------------------------------------------------------------------
# Shared pieces


def _group_stream(qt: QuantizedTensor, offsets: List[int], g: int) -> torch.Tensor:
    """Group g's bytes of `codes`, with zero bytes appended (for read_bits)."""
    return _bits.padded(qt.components["codes"][offsets[g]:offsets[g + 1]])


def _packed_codes(qt: QuantizedTensor, offsets: List[int], g: int, bits: int,
                  width: int) -> torch.Tensor:
    """The [rows, width] codes (int64) of bit-packed group g (§3)."""
    stream = _group_stream(qt, offsets, g)
    pos = torch.arange(qt.rows * width, device=stream.device, dtype=torch.int64) * bits
    return _bits.read_bits(stream, pos, bits).reshape(qt.rows, width)


def _groups(qt: QuantizedTensor):
    """(g, first column, width) of every group."""
    for g in range(qt.num_groups):
        yield g, g * qt.group_size, qt.group_width(g)


def _new_output(qt: QuantizedTensor, dtype=torch.float64) -> torch.Tensor:
    return torch.empty(qt.rows, qt.cols, dtype=dtype, device=qt.device)


# ---------------------------------------------------------------------------
# glvq (§4.1) and rtn (§4.2)


def _lattice_points(z: torch.Tensor, gen: torch.Tensor) -> torch.Tensor:
    """y[..., i] = sum_j gen[i, j] z[..., j], summed over j in increasing order.

    z: [..., k] float64 offsets; gen: [k, k] float64 generator block."""
    y = z[..., 0:1] * gen[:, 0]
    for j in range(1, gen.shape[1]):
        y = y + z[..., j:j + 1] * gen[:, j]
    return y


def _inverse_compand(y: torch.Tensor, mu: float) -> torch.Tensor:
    """F_mu^-1(y) = sgn(y) expm1(|y| log1p(mu)) / mu; the identity for mu = 0."""
    if mu == 0:
        return y
    return torch.copysign(torch.expm1(y.abs() * math.log1p(mu)) / mu, y)


def _decode_glvq(qt: QuantizedTensor) -> torch.Tensor:
    c = qt.components
    d = qt.dim
    bits = c["bits"].tolist()
    offsets = c["offsets"].tolist()
    mus = c["mu"].tolist()
    scales = c["scale"].to(torch.float64)
    generators = c["generators"].to(torch.float64)
    row_scale = c["row_scale"].to(torch.float64)[:, None] if "row_scale" in c else None
    out = _new_output(qt)
    for g, first, width in _groups(qt):
        codes = _packed_codes(qt, offsets, g, bits[g], width)
        z = codes.to(torch.float64) - (2.0 ** (bits[g] - 1) - 0.5)
        whole, short = divmod(width, d)
        parts = []
        if whole:
            y = _lattice_points(z[:, :whole * d].reshape(qt.rows, whole, d), generators[g])
            parts.append(y.reshape(qt.rows, whole * d))
        if short:  # a row's last vector is short: the leading k x k block of G
            parts.append(_lattice_points(z[:, whole * d:], generators[g, :short, :short]))
        y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        gain = scales[g] if row_scale is None else scales[g] * row_scale
        out[:, first:first + width] = gain * _inverse_compand(y, mus[g])
    return out


def _decode_rtn(qt: QuantizedTensor) -> torch.Tensor:
    c = qt.components
    bits = c["bits"].tolist()
    offsets = c["offsets"].tolist()
    scale = c["scale"].to(torch.float64)
    zero = c["zero"].to(torch.float64)
    out = _new_output(qt)
    for g, first, width in _groups(qt):
        codes = _packed_codes(qt, offsets, g, bits[g], width).to(torch.float64)
        out[:, first:first + width] = scale[g][:, None] * (codes - zero[g][:, None])
    return out


# ---------------------------------------------------------------------------
# e8p (§4.3)

# The 29 abs vectors of norm^2 12: the coordinates holding 1/2 (others 3/2).
_E8P_NORM12_HALVES = (
    (1, 2, 3), (0, 2, 3), (0, 1, 3), (0, 1, 2), (3, 6, 7), (3, 5, 7), (3, 4, 7), (3, 5, 6),
    (3, 4, 6), (3, 4, 5), (2, 6, 7), (2, 5, 7), (2, 4, 7), (2, 5, 6), (2, 4, 6), (2, 4, 5),
    (1, 6, 7), (1, 5, 7), (1, 4, 7), (1, 5, 6), (1, 4, 6), (0, 4, 5), (0, 6, 7), (0, 5, 7),
    (0, 4, 7), (0, 5, 6), (0, 4, 6), (0, 1, 4), (2, 3, 7))


@functools.lru_cache(maxsize=1)
def e8p_abs_table() -> np.ndarray:
    """The 256 doubled abs vectors A[i] (int64 [256, 8], odd entries 1/3/5)."""
    grid = np.array(list(itertools.product((1, 3, 5), repeat=8)), dtype=np.int64)
    small = grid[(grid * grid).sum(axis=1) <= 40]  # lexicographic, coordinate 0 first
    extra = np.full((len(_E8P_NORM12_HALVES), 8), 3, dtype=np.int64)
    for row, halves in zip(extra, _E8P_NORM12_HALVES):
        row[list(halves)] = 1
    table = np.concatenate((small, extra))
    assert table.shape == (256, 8)
    return table


@functools.lru_cache(maxsize=1)
def _e8p_codebook_np() -> np.ndarray:
    """All 65536 codewords c(q) (float64 [65536, 8], exact)."""
    q = np.arange(1 << 16, dtype=np.int64)
    doubled = e8p_abs_table()[q & 0xFF]
    flips = (q >> 8) & 0x7F
    signs = (flips[:, None] >> np.arange(7)) & 1  # n_1 .. n_7
    popcount = signs.sum(axis=1)
    n0 = (popcount + doubled.sum(axis=1) // 2) & 1
    negate = np.concatenate((n0[:, None], signs), axis=1).astype(bool)
    shift = np.where((q >> 15) == 1, 0.25, -0.25)
    return np.where(negate, -0.5, 0.5) * doubled + shift[:, None]


_E8P_CODEBOOKS: Dict[torch.device, torch.Tensor] = {}


def e8p_codebook(device) -> torch.Tensor:
    """The E8P codebook as float64 [65536, 8] on `device` (cached)."""
    device = torch.device(device)
    if device not in _E8P_CODEBOOKS:
        _E8P_CODEBOOKS[device] = torch.from_numpy(_e8p_codebook_np()).to(device)
    return _E8P_CODEBOOKS[device]


def _decode_e8p(qt: QuantizedTensor) -> torch.Tensor:
    c = qt.components
    offsets = c["offsets"].tolist()
    scales = c["scale"].to(torch.float64)
    table = e8p_codebook(qt.device)
    out = _new_output(qt)
    for g, first, width in _groups(qt):
        per_row = -(-width // 8)
        raw = c["codes"][offsets[g]:offsets[g + 1]].to(torch.int64).reshape(qt.rows, per_row, 2)
        q = raw[..., 0] | (raw[..., 1] << 8)  # little-endian uint16
        words = table[q].reshape(qt.rows, per_row * 8)[:, :width]  # short: first k of 8
        out[:, first:first + width] = scales[g] * words
    return out


# ---------------------------------------------------------------------------
# pvq (§4.7)

_PVQ_TABLES: Dict[Tuple[int, int, torch.device], Tuple[torch.Tensor, torch.Tensor]] = {}


def _pvq_tables(n: int, pulses: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """int64 [n, K+1] tables N(m, k) and P(m, k) = sum_{j<=k} N(m, j) for
    m = 0..n-1 (all below N(n, K) < 2^62), cached per device."""
    key = (n, pulses, torch.device(device))
    if key not in _PVQ_TABLES:
        counts = _bits.pyramid_table(n, pulses)[:n]
        prefixes = [list(itertools.accumulate(row)) for row in counts]
        _PVQ_TABLES[key] = (torch.tensor(counts, dtype=torch.int64, device=device),
                            torch.tensor(prefixes, dtype=torch.int64, device=device))
    return _PVQ_TABLES[key]


def pyramid_points(index: torch.Tensor, n: int, pulses: int) -> torch.Tensor:
    """The points y of P(n, K) (int64 [..., n]) with the given int64 indices
    (each below N(n, K) < 2^62), by the enumeration of §4.7.

    At position i with k pulses left and m = n - 1 - i positions after it,
    y_i = 0 takes the first N(m, k) indices, then +a and -a N(m, k - a) each
    for a = 1, 2, ...; the block of |y_i| is found with a binary search in
    the prefix sums P(m, .)."""
    counts, prefixes = _pvq_tables(n, pulses, index.device)
    rem = index.reshape(-1).clone()
    k = torch.full_like(rem, pulses)
    ys = []
    for i in range(n):
        m = n - 1 - i
        cm, pm = counts[m], prefixes[m]
        n_mk = cm[k]
        zero = rem < n_mk
        excess = (rem - n_mk).clamp(min=0)
        k_less = (k - 1).clamp(min=0)
        p_k1 = pm[k_less]
        # The block of |y_i| = a = k - j starts at N(m,k) + 2 (P(m,k-1) - P(m,j));
        # the largest a that starts at or before rem has the smallest j with
        # P(m, j) >= P(m, k-1) - floor(excess / 2).
        j = torch.searchsorted(pm, (p_k1 - (excess >> 1)).contiguous())
        j = torch.minimum(j, k_less)
        offset = rem - n_mk - 2 * (p_k1 - pm[j])
        n_mj = cm[j]
        plus = offset < n_mj
        a = k - j
        ys.append(torch.where(zero, torch.zeros_like(a), torch.where(plus, a, -a)))
        rem = torch.where(zero, rem, torch.where(plus, offset, offset - n_mj))
        k = torch.where(zero, k, j)
    return torch.stack(ys, dim=-1).reshape(*index.shape, n)


def pyramid_point_exact(index: int, n: int, pulses: int) -> List[int]:
    """The point of P(n, K) with a given (Python int) index: the exact,
    one-at-a-time decoder for indices of any width."""
    table = _bits.pyramid_table(n, pulses)
    y = []
    k = pulses
    for i in range(n):
        row = table[n - 1 - i]
        if index < row[k]:
            y.append(0)
            continue
        index -= row[k]
        a = 1
        while index >= 2 * row[k - a]:
            index -= 2 * row[k - a]
            a += 1
        if index < row[k - a]:
            y.append(a)
        else:
            y.append(-a)
            index -= row[k - a]
        k -= a
    return y


def _pvq_records(stream: torch.Tensor, pos: torch.Tensor, n: int, pulses: int,
                 nbits: int) -> torch.Tensor:
    """The points (int64 [..., n]) of the records whose indices start at `pos`."""
    if nbits <= _bits.PVQ_INT64_BITS:
        return pyramid_points(_bits.read_bits(stream, pos, nbits), n, pulses)
    word_bits = 31
    words = [w.reshape(-1).tolist() for w in
             _bits.read_index_words(stream, pos, nbits, word_bits)]
    points = []
    for r in range(pos.numel()):
        index = sum(words[i][r] << (word_bits * i) for i in range(len(words)))
        points.append(pyramid_point_exact(index, n, pulses))
    return torch.tensor(points, dtype=torch.int64, device=pos.device).reshape(*pos.shape, n)


def _decode_pvq(qt: QuantizedTensor) -> torch.Tensor:
    c = qt.components
    offsets = c["offsets"].tolist()
    norms = c["norms"].to(torch.float64)
    gains = c["gains"].to(torch.float64)
    out = _new_output(qt)
    for (g, first, width), layout in zip(_groups(qt), pvq_layouts(qt)):
        stream = _group_stream(qt, offsets, g)
        row_start = torch.arange(qt.rows, device=stream.device, dtype=torch.int64)
        row_start = row_start * layout.row_bits
        kinds = []  # (first vector, count) of whole vectors, then the short one
        if layout.whole:
            kinds.append((0, layout.whole))
        if layout.short_dim:
            kinds.append((layout.whole, 1))
        for v0, count in kinds:
            n, pulses, nbits, gain_row = layout.pyramid(v0, qt.dim)
            starts = torch.arange(v0, v0 + count, device=stream.device, dtype=torch.int64)
            pos = row_start[:, None] + starts * (layout.whole_bits + layout.gain_bits)
            y = _pvq_records(stream, pos, n, pulses, nbits)  # [rows, count, n]
            code = _bits.read_bits(stream, pos + nbits, layout.gain_bits)
            norm2 = (y * y).sum(dim=-1).to(torch.float64)
            f = norms[:, None] * gains[gain_row][code] / torch.sqrt(norm2)
            w = f[..., None] * y.to(torch.float64)
            col = first + v0 * qt.dim
            out[:, col:col + count * n] = w.reshape(qt.rows, count * n)
    return out


# ---------------------------------------------------------------------------
# trellis (§4.8)

_TRELLIS_MUL = 0x2CA1C789
_TRELLIS_ADD = 0x9C9CEA0C


@functools.lru_cache(maxsize=None)
def trellis_norm(window: int) -> Tuple[float, float]:
    """(mean_L, inv_std_L) as float32 values: the float roundings of the exact
    mean and 1/std of S over all 2^L states, L = window (1..20)."""
    states = np.arange(1 << window, dtype=np.uint64)
    h = (states * np.uint64(_TRELLIS_MUL) + np.uint64(_TRELLIS_ADD)) & np.uint64(0xFFFFFFFF)
    s = sum((h >> np.uint64(8 * i)) & np.uint64(0xFF) for i in range(4)).astype(np.int64)
    total, total_sq = int(s.sum()), int((s * s).sum())
    n = 1 << window
    var = math.ldexp(float(total_sq * n - total * total), -2 * window)
    mean = math.ldexp(float(total), -window)
    return float(np.float32(mean)), float(np.float32(1.0 / math.sqrt(var)))


def trellis_values(states: torch.Tensor, window: int) -> torch.Tensor:
    """V_L(W) (float32) of int64 states W < 2^L: (float(S(W)) - mean_L) * inv_std_L."""
    h = (states * _TRELLIS_MUL + _TRELLIS_ADD) & 0xFFFFFFFF
    s = (h & 0xFF) + ((h >> 8) & 0xFF) + ((h >> 16) & 0xFF) + (h >> 24)
    mean, inv_std = trellis_norm(window)
    # 0-d float32 tensors: the arithmetic stays in float32 as the format says.
    mean_t = torch.tensor(mean, dtype=torch.float32, device=states.device)
    inv_t = torch.tensor(inv_std, dtype=torch.float32, device=states.device)
    return (s.to(torch.float32) - mean_t) * inv_t


def _trellis_states(rows_bytes: torch.Tensor, steps: int, k: int, window: int) -> torch.Tensor:
    """W_t (int64 [rows, T]) of tail-biting streams of T k-bit codes:
    the window bits (t k + k - L + b) mod N, b = 0..L-1, LSB first."""
    n_bits = steps * k
    bits = _bits.unpack_bits(rows_bytes, n_bits).to(torch.int64)
    t = torch.arange(steps, device=rows_bytes.device, dtype=torch.int64)
    state = torch.zeros(rows_bytes.shape[0], steps, dtype=torch.int64, device=rows_bytes.device)
    for b in range(window):
        state |= bits[:, (t * k + (k - window + b)) % n_bits] << b
    return state


def _decode_trellis(qt: QuantizedTensor) -> torch.Tensor:
    """Float32 weights (§4.8 is float arithmetic)."""
    c = qt.components
    bits = c["bits"].tolist()
    offsets = c["offsets"].tolist()
    row_scale = c["row_scale"].to(torch.float32)
    scale = c["scale"].to(torch.float32)
    out = _new_output(qt, torch.float32)
    full, rest = divmod(qt.rows, qt.tile_rows)
    for g, first, width in _groups(qt):
        k = bits[g]
        at, values = offsets[g], []
        # Full tiles as one batch of sequences, then the short last tile.
        for count, n in ((full, qt.tile_rows), (1 if rest else 0, rest)):
            if not count:
                continue
            steps = n * width
            window, size = min(qt.dim, steps * k), -(-steps * k // 8)
            streams = c["codes"][at:at + count * size].reshape(count, size)
            at += count * size
            v = trellis_values(_trellis_states(streams, steps, k, window), window)
            values.append(v.reshape(count * n, width))
        v = values[0] if len(values) == 1 else torch.cat(values)
        # 1 · V is exact, so this is the format's one float product s_rg · V.
        out[:, first:first + width] = (row_scale * scale[g])[:, None] * v
    return out


_DECODERS = {"glvq": _decode_glvq, "rtn": _decode_rtn, "e8p": _decode_e8p,
             "pvq": _decode_pvq, "trellis": _decode_trellis}


# ---------------------------------------------------------------------------
# Randomized Hadamard transform (§4.5)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _M64


@functools.lru_cache(maxsize=128)
def hadamard_signs(n: int, seed: int) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(d1, d2) of T(n, seed): float64 arrays of +-1 (d2 None when n is a power
    of two), from the top bits of successive xoshiro256** draws."""
    s0 = _splitmix64(seed & _M64)
    s1 = _splitmix64(s0)
    s2 = _splitmix64(s1)
    s3 = _splitmix64(s2)
    power_of_two = n & (n - 1) == 0
    top = []
    for _ in range(n if power_of_two else 2 * n):
        top.append(((_rotl((s1 * 5) & _M64, 7) * 9) & _M64) >> 63)
        t = (s1 << 17) & _M64
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, 45)
    signs = 1.0 - 2.0 * np.array(top, dtype=np.float64)
    return signs[:n], (None if power_of_two else signs[n:])


def _hadamard_window(x: torch.Tensor, first: int, m: int) -> torch.Tensor:
    """x with x[..., first:first+m] replaced by H_m/sqrt(m) times it (float64):
    butterflies (x_i, x_i+h) <- (x_i + x_i+h, x_i - x_i+h) for h = 1, 2, ...,
    then the scaling by the double 1/sqrt(m)."""
    n = x.shape[-1]
    lead = x.shape[:-1]
    v = x[..., first:first + m]
    h = 1
    while h < m:
        v = v.reshape(*lead, m // (2 * h), 2, h)
        a, b = v[..., 0, :], v[..., 1, :]
        v = torch.stack((a + b, a - b), dim=-2)
        h *= 2
    v = v.reshape(*lead, m) * (1.0 / math.sqrt(m))
    if m == n:
        return v
    return torch.cat((x[..., :first], v, x[..., first + m:]), dim=-1)


def _signs_on(signs: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(signs).to(device=like.device, dtype=like.dtype)


def transform_inverse(x: torch.Tensor, seed: int) -> torch.Tensor:
    """T(n, seed)^T applied to every vector along x's last dim (n = its size)."""
    n = x.shape[-1]
    m = 1 << (n.bit_length() - 1)
    d1, d2 = hadamard_signs(n, seed & _M64)
    if d2 is not None:
        x = _hadamard_window(x, n - m, m) * _signs_on(d2, x)
    return _hadamard_window(x, 0, m) * _signs_on(d1, x)


def transform_forward(x: torch.Tensor, seed: int) -> torch.Tensor:
    """T(n, seed) applied to every vector along x's last dim (for tests)."""
    n = x.shape[-1]
    m = 1 << (n.bit_length() - 1)
    d1, d2 = hadamard_signs(n, seed & _M64)
    x = _hadamard_window(x * _signs_on(d1, x), 0, m)
    if d2 is not None:
        x = _hadamard_window(x * _signs_on(d2, x), n - m, m)
    return x


def rht_inverse(w: torch.Tensor, seed_row: int, seed_col: int) -> torch.Tensor:
    """W = T_m^T W~ T_n for a float64 [rows, cols] W~ (§4.4): every row y
    becomes T_n^T y, then every column z becomes T_m^T z."""
    w = transform_inverse(w, seed_col)
    return transform_inverse(w.t(), seed_row).t().contiguous()
