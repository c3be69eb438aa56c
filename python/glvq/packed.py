"""Reader of the glvq packed format, version 1 (docs/format.md).

`PackedModel.open(directory)` parses and checks everything docs/format.md §9
asks of a reader: the manifest, config.json's quantization_config, the
safetensors file(s), the exact set of tensors, their dtypes, shapes, sizes
and CRC-32C checksums, every quantized tensor against §5 (including padding
bits and pvq indices), the bit accounting and the totals. Any problem raises
`FormatError` with a one-line message that names the file and tensor.

Quantized weights come back as `QuantizedTensor` objects holding their
component tensors (§4) as CPU torch tensors; `glvq.decode.dequantize` turns
one into dense weights. The `codes` component is a zero-copy view of the
memory-mapped file (private copy-on-write mapping); the small side
information is copied.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import mmap
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from . import _bits
from ._crc32c import crc32c

MANIFEST_FILE = "glvq_manifest.json"
CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
MANIFEST_FORMAT = "glvq-packed"
FORMAT_VERSION = 1
COMPONENT_INFIX = ".glvq."

METHODS = ("glvq", "rtn", "e8p", "pvq", "trellis")
SOURCE_DTYPES = ("F32", "F16", "BF16")
MAX_EXTENT = (1 << 31) - 1
MAX_WEIGHTS = 1 << 48
MAX_LATTICE_DIM = 32
TRELLIS_MAX_L = 20
TRELLIS_MAX_TILE_ROWS = 64  # §4.8: rows per tail-biting sequence
TRELLIS_MAX_BITS = 4
# Largest safetensors header this reader parses (the C++ reader's limit).
_MAX_HEADER_BYTES = 100 << 20
_MAX_JSON_INT = (1 << 63) - 1
_MAX_JSON_UINT = (1 << 64) - 1

# safetensors dtype -> (torch dtype, bytes per element)
_ST_DTYPES: Dict[str, Tuple[torch.dtype, int]] = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_TORCH_TO_ST = {v[0]: k for k, v in _ST_DTYPES.items()}

if sys.byteorder != "little":  # pragma: no cover
    raise ImportError("glvq reads little-endian safetensors data in place; "
                      "this platform is big-endian")


class FormatError(ValueError):
    """An invalid or corrupt packed model or quantized tensor.

    The message is one line naming the file and/or tensor at fault."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


# ---------------------------------------------------------------------------
# QuantizedTensor


@dataclasses.dataclass
class QuantizedTensor:
    """One quantized weight [rows, cols] and its component tensors (§4).

    name: the source weight, e.g. 'model.layers.0.mlp.up_proj.weight'.
    method: 'glvq' | 'rtn' | 'e8p' | 'pvq' | 'trellis'.
    group_size: columns per group; dim: vector dimension d (rtn 1, e8p 8,
    pvq D, trellis the window L). dtype: the source dtype 'F32'|'F16'|'BF16'.
    components: component name ('codes', 'bits', 'offsets', 'scale',
    'rht_seed', ...) -> tensor (U8 -> uint8, I32 -> int32, I64 -> int64,
    F32 -> float32), all on one device. tile_rows: trellis rows per
    tail-biting sequence (§4.8; 1 for every other method).
    """

    name: str
    method: str
    rows: int
    cols: int
    group_size: int
    dim: int
    dtype: str
    components: Dict[str, torch.Tensor]
    tile_rows: int = 1

    @property
    def num_groups(self) -> int:
        """G = ceil(cols / group_size)."""
        return -(-self.cols // self.group_size)

    def group_width(self, g: int) -> int:
        """Columns of group g (the last group may be narrower)."""
        return min(self.group_size, self.cols - g * self.group_size)

    @property
    def device(self) -> torch.device:
        return self.components["codes"].device

    @property
    def packed_bytes(self) -> int:
        """Bytes of all component tensors (bits_total / 8)."""
        return sum(t.numel() * t.element_size() for t in self.components.values())

    def to(self, device) -> "QuantizedTensor":
        """A copy whose components live on `device`."""
        return dataclasses.replace(
            self, components={k: v.to(device) for k, v in self.components.items()})


def _where(qt_name: str) -> str:
    return f"quantized tensor '{qt_name}'"


def component_specs(method: str, rows: int, groups: int, dim: int,
                    gain_rows: int) -> Dict[str, Tuple[str, Optional[Tuple]]]:
    """The required components of a method: name -> (dtype, shape).

    shape None: any 1-D length (codes); a None inside a shape: any extent
    (the levels of pvq's gains)."""
    specs: Dict[str, Tuple[str, Optional[Tuple]]] = {"codes": ("U8", None),
                                                     "offsets": ("I64", (groups + 1,))}
    if method != "pvq":
        specs["bits"] = ("U8", (groups,))
    if method == "glvq":
        specs["generators"] = ("F32", (groups, dim, dim))
        specs["mu"] = ("F32", (groups,))
        specs["scale"] = ("F32", (groups,))
    elif method == "rtn":
        specs["scale"] = ("F32", (groups, rows))
        specs["zero"] = ("F32", (groups, rows))
    elif method == "e8p":
        specs["scale"] = ("F32", (groups,))
    elif method == "pvq":
        specs["pulses"] = ("I32", (groups, 2))
        specs["gains"] = ("F32", (gain_rows, None))
        specs["norms"] = ("F32", (rows,))
    elif method == "trellis":
        specs["row_scale"] = ("F32", (rows,))
        specs["scale"] = ("F32", (groups,))
    return specs


def optional_components(method: str, rows: int) -> Dict[str, Tuple[str, Tuple]]:
    """The optional components of a method: rht_seed (any), row_scale (glvq)."""
    opt = {"rht_seed": ("I64", (2,))}
    if method == "glvq":
        opt["row_scale"] = ("F32", (rows,))
    return opt


def _group_widths(qt: QuantizedTensor) -> np.ndarray:
    g = qt.num_groups
    widths = np.full(g, qt.group_size, dtype=np.int64)
    widths[-1] = qt.cols - (g - 1) * qt.group_size
    return widths


def _pvq_gain_rows(qt: QuantizedTensor) -> int:
    return 2 if bool((_group_widths(qt) % qt.dim != 0).any()) else 1


def _check_scalars(qt: QuantizedTensor) -> None:
    where = _where(qt.name)
    if qt.method not in METHODS:
        raise FormatError(f"{where}: unknown method '{qt.method}' "
                          f"(expected one of {', '.join(METHODS)})")
    if qt.dtype not in SOURCE_DTYPES:
        raise FormatError(f"{where}: source dtype '{qt.dtype}' is not F32, F16 or BF16")
    for what, value in (("rows", qt.rows), ("cols", qt.cols), ("group_size", qt.group_size),
                        ("dim", qt.dim)):
        if not _is_int(value):
            raise FormatError(f"{where}: {what} is not an integer: {value!r}")
    for what, value in (("rows", qt.rows), ("cols", qt.cols), ("group_size", qt.group_size)):
        if not 1 <= value <= MAX_EXTENT:
            raise FormatError(f"{where}: {what} must be in 1..{MAX_EXTENT}, got {value}")
    if qt.rows * qt.cols > MAX_WEIGHTS:
        raise FormatError(f"{where}: rows * cols exceeds 2^48")
    lo, hi = {"glvq": (1, MAX_LATTICE_DIM), "rtn": (1, 1), "e8p": (8, 8),
              "pvq": (1, _bits.PVQ_MAX_DIM), "trellis": (1, TRELLIS_MAX_L)}[qt.method]
    if not lo <= qt.dim <= hi:
        raise FormatError(f"{where}: dim must be in {lo}..{hi} for method '{qt.method}', "
                          f"got {qt.dim}")
    max_tile = TRELLIS_MAX_TILE_ROWS if qt.method == "trellis" else 1
    if not _is_int(qt.tile_rows) or not 1 <= qt.tile_rows <= max_tile:
        raise FormatError(f"{where}: tile_rows must be in 1..{max_tile} for method "
                          f"'{qt.method}', got {qt.tile_rows!r}")


def _check_component_set(qt: QuantizedTensor) -> None:
    where = _where(qt.name)
    gain_rows = _pvq_gain_rows(qt) if qt.method == "pvq" else 1
    specs = component_specs(qt.method, qt.rows, qt.num_groups, qt.dim, gain_rows)
    optional = optional_components(qt.method, qt.rows)
    names = set(qt.components)
    unknown = sorted(names - set(specs) - set(optional))
    if unknown:
        raise FormatError(f"{where}: unknown component(s) {', '.join(unknown)} for method "
                          f"'{qt.method}' (a reader must not ignore a component)")
    missing = sorted(set(specs) - names)
    if missing:
        raise FormatError(f"{where}: missing component(s) {', '.join(missing)} for method "
                          f"'{qt.method}'")
    for name, tensor in qt.components.items():
        dtype, shape = specs[name] if name in specs else optional[name]
        actual_dtype = _TORCH_TO_ST.get(tensor.dtype, str(tensor.dtype))
        actual_shape = tuple(tensor.shape)
        ok = actual_dtype == dtype
        if shape is None:
            ok = ok and len(actual_shape) == 1
        else:
            ok = ok and len(actual_shape) == len(shape) and all(
                e is None or e == a for e, a in zip(shape, actual_shape))
        if not ok:
            want = "[bytes]" if shape is None else list(
                "levels" if e is None else e for e in shape)
            raise FormatError(f"{where}: component '{name}' is {actual_dtype} "
                              f"{list(actual_shape)}, expected {dtype} {want}")


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu").numpy()


def _check_floats(where: str, what: str, values: np.ndarray, rule: str) -> None:
    """rule: 'finite', 'nonneg' (finite, >= 0) or 'positive' (finite, > 0)."""
    values = values.reshape(-1)
    ok = np.isfinite(values)
    if rule == "nonneg":
        ok &= values >= 0
    elif rule == "positive":
        ok &= values > 0
    if not ok.all():
        i = int(np.argmin(ok))
        need = {"finite": "finite", "nonneg": "finite and >= 0",
                "positive": "finite and > 0"}[rule]
        raise FormatError(f"{where}: {what}[{i}] is {float(values[i])!r}, must be {need}")


def pvq_layouts(qt: QuantizedTensor) -> List[_bits.PvqGroupLayout]:
    """The record layout of every group of a pvq tensor; checks pulses and
    gains (FormatError when they are invalid)."""
    where = _where(qt.name)
    levels = qt.components["gains"].shape[1]
    if levels < 1 or levels > 256 or levels & (levels - 1):
        raise FormatError(f"{where}: gains has {levels} levels per row, expected a power of "
                          "two in 1..256")
    gain_bits = levels.bit_length() - 1
    pulses = _np(qt.components["pulses"]).astype(np.int64)
    layouts = []
    for g, width in enumerate(_group_widths(qt).tolist()):
        whole, short = width // qt.dim, width % qt.dim
        kw, ks = int(pulses[g, 0]), int(pulses[g, 1])
        bits = []
        for has, n, k, what in ((whole > 0, qt.dim, kw, "whole vectors"),
                                (short > 0, short, ks, "short vector")):
            if not has:
                if k != 0:
                    raise FormatError(f"{where}: group {g} has no {what} but pulses {k}")
                bits.append(0)
                continue
            if not 1 <= k <= _bits.PVQ_MAX_PULSES:
                raise FormatError(f"{where}: group {g} {what}: pulses K must be in "
                                  f"1..{_bits.PVQ_MAX_PULSES}, got {k}")
            count = _bits.pyramid_size(n, k)
            if count is None:
                raise FormatError(f"{where}: group {g} {what}: N({n}, {k}) needs more than "
                                  f"{_bits.PVQ_MAX_INDEX_BITS} index bits")
            bits.append(_bits.index_bits(count))
        layouts.append(_bits.PvqGroupLayout(whole, short, kw, ks, bits[0], bits[1], gain_bits))
    return layouts


def trellis_tile_sizes(rows: int, tile_rows: int) -> List[int]:
    """Rows of each tile of a trellis group (§4.8): tile_rows each, the
    last one the rest."""
    full, rest = divmod(rows, tile_rows)
    return [tile_rows] * full + ([rest] if rest else [])


def _expected_offsets(qt: QuantizedTensor, layouts) -> List[int]:
    """offsets[0..G] as §3, §4.3, §4.7 and §4.8 define them (Python ints)."""
    widths = _group_widths(qt).tolist()
    rows = qt.rows
    if qt.method == "pvq":
        sizes = [-(-rows * layout.row_bits // 8) for layout in layouts]
    else:
        bits = _np(qt.components["bits"]).tolist()
        if qt.method == "e8p":
            sizes = [2 * rows * -(-w // 8) for w in widths]
        elif qt.method == "trellis":
            sizes = [sum(-(-n * w * b // 8) for n in trellis_tile_sizes(rows, qt.tile_rows))
                     for w, b in zip(widths, bits)]
        else:
            sizes = [-(-rows * w * b // 8) for w, b in zip(widths, bits)]
    return list(itertools.accumulate(sizes, initial=0))


def _check_bits_and_offsets(qt: QuantizedTensor, layouts) -> None:
    where = _where(qt.name)
    if qt.method != "pvq":
        b = _np(qt.components["bits"])
        # trellis: W_t = (W_{t-1} >> k) | (c_t << (L - k)) needs k <= L.
        hi = min(TRELLIS_MAX_BITS, qt.dim) if qt.method == "trellis" else 8
        bad = np.nonzero((b < 1) | (b > hi))[0]
        if bad.size:
            g = int(bad[0])
            raise FormatError(f"{where}: group {g} has {int(b[g])} bits per code, expected "
                              f"1..{hi} for method '{qt.method}'")
        if qt.method == "e8p" and (b != 2).any():
            g = int(np.nonzero(b != 2)[0][0])
            raise FormatError(f"{where}: group {g} has {int(b[g])} bits per weight, e8p has "
                              "exactly 2")
    offsets = _np(qt.components["offsets"])
    expected = _expected_offsets(qt, layouts)
    for g, want in enumerate(expected):
        if int(offsets[g]) != want:
            raise FormatError(f"{where}: offsets[{g}] is {int(offsets[g])}, expected {want}")
    size = qt.components["codes"].numel()
    if size != expected[-1]:
        raise FormatError(f"{where}: codes has {size} bytes, offsets say {expected[-1]}")


def _check_codes(qt: QuantizedTensor, layouts) -> None:
    """Padding bits zero; pvq indices below their pyramid's N."""
    where = _where(qt.name)
    if qt.method == "e8p":
        return  # every uint16 is a codeword
    codes = qt.components["codes"].to("cpu")
    offsets = [int(v) for v in _np(qt.components["offsets"])]
    widths = _group_widths(qt).tolist()
    if qt.method in ("glvq", "rtn"):
        bits = _np(qt.components["bits"]).tolist()
        for g, (w, b) in enumerate(zip(widths, bits)):
            used = qt.rows * w * b % 8
            if used and int(codes[offsets[g + 1] - 1]) >> used:
                raise FormatError(f"{where}: group {g} has nonzero padding bits")
        return
    if qt.method == "trellis":
        bits = _np(qt.components["bits"]).tolist()
        full, rest = divmod(qt.rows, qt.tile_rows)
        for g, (w, k) in enumerate(zip(widths, bits)):
            # The full tiles' streams all have one size: check their last
            # bytes in one gather (rows / tile_rows of them), then the rest.
            bits_full, bits_rest = qt.tile_rows * w * k, rest * w * k
            size = -(-bits_full // 8)
            if bits_full % 8 and full:
                last = offsets[g] + torch.arange(1, full + 1, dtype=torch.int64) * size - 1
                bad = (codes[last].to(torch.int64) >> (bits_full % 8)) != 0
                if bool(bad.any()):
                    j = int(torch.nonzero(bad)[0])
                    raise FormatError(f"{where}: group {g}, tile {j} has nonzero padding bits")
            if bits_rest % 8 and int(codes[offsets[g] + full * size + bits_rest // 8]) >> (
                    bits_rest % 8):
                raise FormatError(f"{where}: group {g}, tile {full} has nonzero padding bits")
        return
    for g, layout in enumerate(layouts):  # pvq
        total = qt.rows * layout.row_bits
        if total % 8 and int(codes[offsets[g] + total // 8]) >> (total % 8):
            raise FormatError(f"{where}: group {g} has nonzero padding bits")
        stream = _bits.padded(codes[offsets[g]:offsets[g + 1]])
        row_start = torch.arange(qt.rows, dtype=torch.int64) * layout.row_bits
        for v in range(layout.vectors):
            n, k, nbits, _ = layout.pyramid(v, qt.dim)
            count = _bits.pyramid_size(n, k)
            ok = _bits.indices_below(stream, row_start + layout.record_bit(v), nbits, count)
            if not bool(ok.all()):
                r = int(torch.nonzero(~ok)[0])
                raise FormatError(f"{where}: group {g} row {r} vector {v} has a pyramid "
                                  f"index beyond N({n}, {k})")


def _check_side_info(qt: QuantizedTensor) -> None:
    where = _where(qt.name)
    c = {k: _np(v) for k, v in qt.components.items() if k != "codes"}
    if qt.method == "glvq":
        _check_floats(where, "generators", c["generators"], "finite")
        _check_floats(where, "mu", c["mu"], "nonneg")
        _check_floats(where, "scale", c["scale"], "positive")
        if "row_scale" in c:
            _check_floats(where, "row_scale", c["row_scale"], "positive")
    elif qt.method == "rtn":
        _check_floats(where, "scale", c["scale"], "positive")
        _check_floats(where, "zero", c["zero"], "finite")
    elif qt.method == "e8p":
        _check_floats(where, "scale", c["scale"], "positive")
    elif qt.method == "pvq":
        _check_floats(where, "gains", c["gains"], "finite")
        _check_floats(where, "norms", c["norms"], "nonneg")
    elif qt.method == "trellis":
        # §4.8: row gains may be 0 (an all-zero row), group gains may not.
        _check_floats(where, "row_scale", c["row_scale"], "nonneg")
        _check_floats(where, "scale", c["scale"], "positive")


def validate_quantized(qt: QuantizedTensor) -> None:
    """Checks `qt` against docs/format.md §5 (FormatError if it breaks a rule).

    PackedModel.open calls this for every tensor; call it yourself for a
    QuantizedTensor built by hand before decoding it."""
    _check_scalars(qt)
    _check_component_set(qt)
    layouts = pvq_layouts(qt) if qt.method == "pvq" else None
    _check_bits_and_offsets(qt, layouts)
    _check_codes(qt, layouts)
    _check_side_info(qt)


def accounting(qt: QuantizedTensor) -> Tuple[int, int]:
    """(bits_payload, bits_total) of a valid tensor (docs/format.md §8)."""
    widths = _group_widths(qt).tolist()
    if qt.method == "pvq":
        payload = sum(qt.rows * l.row_bits for l in pvq_layouts(qt))
    elif qt.method == "e8p":
        payload = sum(qt.rows * -(-w // 8) * 16 for w in widths)
    else:
        bits = _np(qt.components["bits"]).tolist()
        payload = sum(qt.rows * w * b for w, b in zip(widths, bits))
    return payload, 8 * qt.packed_bytes


# ---------------------------------------------------------------------------
# JSON helpers


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def _no_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def _parse_json(text: bytes, where: str):
    try:
        return json.loads(text.decode("utf-8"), parse_constant=_reject_constant,
                          parse_float=_finite_float, object_pairs_hook=_no_duplicates)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise FormatError(f"{where}: not valid JSON: {e}") from None


def _read_json_file(path: str) -> Any:
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        raise FormatError(f"{path}: missing (not a glvq packed model?)") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read: {e}") from None
    return _parse_json(text, path)


class _Fields:
    """Typed access to a JSON object's fields with errors that say where."""

    def __init__(self, obj, where: str):
        if not isinstance(obj, dict):
            raise FormatError(f"{where}: expected a JSON object")
        self.obj = obj
        self.where = where

    def has(self, key):
        return key in self.obj

    def get(self, key):
        if key not in self.obj:
            raise FormatError(f"{self.where}.{key}: missing")
        return self.obj[key]

    def _error(self, key, what):
        return FormatError(f"{self.where}.{key}: expected {what}, got {self.obj[key]!r:.80}")

    def string(self, key) -> str:
        v = self.get(key)
        if not isinstance(v, str):
            raise self._error(key, "a string")
        return v

    def integer(self, key) -> int:
        v = self.get(key)
        if not _is_int(v) or not -_MAX_JSON_INT - 1 <= v <= _MAX_JSON_INT:
            raise self._error(key, "an integer")
        return v

    def uint(self, key) -> int:
        v = self.get(key)
        if not _is_int(v) or not 0 <= v <= _MAX_JSON_UINT:
            raise self._error(key, "a non-negative integer")
        return v

    def number(self, key) -> float:
        v = self.get(key)
        if not _is_number(v):
            raise self._error(key, "a number")
        return float(v)

    def boolean(self, key) -> bool:
        v = self.get(key)
        if not isinstance(v, bool):
            raise self._error(key, "true or false")
        return v

    def child(self, key) -> "_Fields":
        return _Fields(self.get(key), f"{self.where}.{key}")

    def shape(self, key) -> List[int]:
        v = self.get(key)
        if not isinstance(v, list) or not all(_is_int(d) and 0 <= d <= _MAX_JSON_INT for d in v):
            raise self._error(key, "a list of non-negative integers")
        return list(v)

    def dtype(self, key) -> str:
        v = self.string(key)
        if v not in _ST_DTYPES:
            raise FormatError(f"{self.where}.{key}: unknown or unsupported dtype '{v}'")
        return v

    def crc(self, key) -> int:
        v = self.string(key)
        if len(v) != 8 or any(ch not in "0123456789abcdef" for ch in v):
            raise self._error(key, "8 lowercase hex digits")
        return int(v, 16)


_CONFIG_KEYS = ("quant_method", "format_version", "method", "bits", "lattice_dim", "group_size")


def _parse_quantization_config(f: _Fields) -> Dict[str, Any]:
    """The six fields of §6 (format_version must be 1)."""
    if f.string("quant_method") != "glvq":
        raise FormatError(f"{f.where}.quant_method: expected \"glvq\", got "
                          f"{f.obj['quant_method']!r}")
    version = f.integer("format_version")
    if version != FORMAT_VERSION:
        raise FormatError(f"{f.where}.format_version: {version} is not supported "
                          f"(this reader reads {FORMAT_VERSION})")
    return {"quant_method": "glvq", "format_version": version, "method": f.string("method"),
            "bits": f.number("bits"), "lattice_dim": f.integer("lattice_dim"),
            "group_size": f.integer("group_size")}


def _per_weight(bits: int, weights: int) -> float:
    return 0.0 if weights == 0 else bits / weights


def _check_accounting(f: _Fields, weights: int) -> Tuple[int, int]:
    payload, total = f.uint("bits_payload"), f.uint("bits_total")
    pw_payload = f.number("bits_per_weight_payload")
    pw_total = f.number("bits_per_weight_total")
    if pw_payload != _per_weight(payload, weights) or pw_total != _per_weight(total, weights):
        raise FormatError(f"{f.where}: bits per weight ({pw_payload}, {pw_total}) do not follow "
                          f"from bits {payload}, {total} and {weights} weights")
    return payload, total


@dataclasses.dataclass
class _Entry:
    """One manifest tensor entry, parsed."""

    name: str
    quantized: bool
    dtype: str
    shape: List[int]
    where: str
    bytes: int = 0  # pass-through
    crc: int = 0  # pass-through
    method: str = ""
    group_size: int = 0
    dim: int = 0
    tile_rows: int = 1
    num_groups: int = 0
    # component name -> (tensor name, dtype, shape, bytes, crc)
    components: Dict[str, Tuple[str, str, List[int], int, int]] = dataclasses.field(
        default_factory=dict)
    payload: int = 0
    total: int = 0


def _parse_entry(f: _Fields) -> _Entry:
    name = f.string("name")
    where = f"{f.where} ('{name}')"
    f = _Fields(f.obj, where)
    if COMPONENT_INFIX in name:
        raise FormatError(f"{where}: name uses the reserved part '{COMPONENT_INFIX}'")
    e = _Entry(name=name, quantized=f.boolean("quantized"), dtype=f.dtype("dtype"),
               shape=f.shape("shape"), where=where)
    if not e.quantized:
        e.bytes, e.crc = f.uint("bytes"), f.crc("crc32c")
        return e
    e.method = f.string("method")
    if e.method not in METHODS:
        raise FormatError(f"{where}: unknown method '{e.method}'")
    if len(e.shape) != 2 or e.shape[0] < 1 or e.shape[1] < 1:
        raise FormatError(f"{where}: a quantized tensor must be 2-D and non-empty, "
                          f"got shape {e.shape}")
    if e.dtype not in SOURCE_DTYPES:
        raise FormatError(f"{where}: source dtype {e.dtype} is not a float dtype")
    e.group_size, e.dim = f.integer("group_size"), f.integer("dim")
    if "tile_rows" in f.obj:
        e.tile_rows = f.integer("tile_rows")
    e.num_groups = f.integer("num_groups")
    comps = f.child("components")
    names = set(comps.obj)
    allowed = set(component_specs(e.method, 1, 1, 1, 1)) | set(optional_components(e.method, 1))
    unknown = sorted(names - allowed)
    if unknown:
        raise FormatError(f"{comps.where}: unknown component(s) {', '.join(unknown)} for "
                          f"method '{e.method}' (a reader must not ignore a component)")
    missing = sorted(set(component_specs(e.method, 1, 1, 1, 1)) - names)
    if missing:
        raise FormatError(f"{comps.where}: missing component(s) {', '.join(missing)}")
    for cname in sorted(names):
        cf = comps.child(cname)
        tensor = cf.string("tensor")
        if tensor != name + COMPONENT_INFIX + cname:
            raise FormatError(f"{cf.where}.tensor: expected \"{name}{COMPONENT_INFIX}{cname}\"")
        e.components[cname] = (tensor, cf.dtype("dtype"), cf.shape("shape"), cf.uint("bytes"),
                               cf.crc("crc32c"))
    e.payload, e.total = _check_accounting(f, e.shape[0] * e.shape[1])
    if f.has("quality"):
        q = f.child("quality")
        for key in ("nmse", "sqnr_db", "proxy_loss") + (("top_error",) if q.has("top_error")
                                                        else ()):
            q.number(key)  # finite by the parser
        if q.has("top_error") and q.number("top_error") < 0:
            raise FormatError(f"{q.where}.top_error: must be >= 0")
    return e


# ---------------------------------------------------------------------------
# safetensors


@dataclasses.dataclass
class _StEntry:
    dtype: str
    shape: List[int]
    begin: int  # absolute byte offsets in the file
    end: int
    file: "_StFile"


class _StFile:
    """One memory-mapped safetensors file with a validated header."""

    def __init__(self, path: str):
        self.path = path
        try:
            size = os.path.getsize(path)
            if size < 8:
                raise FormatError(f"{path}: file is truncated ({size} bytes)")
            with open(path, "rb") as f:
                # Private copy-on-write mapping: tensors over it are writable
                # without touching the file.
                self.map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except OSError as e:
            raise FormatError(f"{path}: cannot read: {e}") from None
        self.bytes = np.frombuffer(self.map, dtype=np.uint8)
        length = int.from_bytes(self.map[:8], "little")
        if length > size - 8:
            raise FormatError(f"{path}: header length {length} exceeds the file size {size}")
        if length > _MAX_HEADER_BYTES:
            raise FormatError(f"{path}: header length {length} exceeds the limit")
        text = self.map[8:8 + length]
        if not text.startswith(b"{"):
            raise FormatError(f"{path}: header does not start with '{{'")
        header = _parse_json(text, f"{path} (header)")
        if not isinstance(header, dict):
            raise FormatError(f"{path}: header is not a JSON object")
        data_offset = 8 + length
        data_size = size - data_offset
        self.metadata = header.pop("__metadata__", {})
        if not isinstance(self.metadata, dict) or not all(
                isinstance(v, str) for v in self.metadata.values()):
            raise FormatError(f"{path}: __metadata__ is not an object of strings")
        self.entries: Dict[str, _StEntry] = {}
        for name, value in header.items():
            self.entries[name] = self._entry(name, value, data_offset, data_size)
        spans = sorted((e.begin, e.end, n) for n, e in self.entries.items())
        covered = data_offset
        for begin, end, name in spans:
            if begin != covered:
                what = "overlaps another tensor" if begin < covered else "leaves a hole before it"
                raise FormatError(f"{path}: tensor '{name}' {what} in the data section")
            covered = end
        if covered != size:
            raise FormatError(f"{path}: trailing bytes in the data section belong to no tensor")

    def _entry(self, name, value, data_offset, data_size) -> _StEntry:
        where = f"{self.path}: tensor '{name}'"
        if not name:
            raise FormatError(f"{self.path}: empty tensor name")
        f = _Fields(value, where)
        extra = set(value) - {"dtype", "shape", "data_offsets"}
        if extra:
            raise FormatError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        dtype, shape = f.dtype("dtype"), f.shape("shape")
        offsets = f.get("data_offsets")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(
                _is_int(v) and v >= 0 for v in offsets)) or offsets[0] > offsets[1]:
            raise FormatError(f"{where}: bad data_offsets {offsets!r:.80}")
        nbytes = math.prod(shape) * _ST_DTYPES[dtype][1]
        if offsets[1] - offsets[0] != nbytes:
            raise FormatError(f"{where}: data_offsets {offsets} hold {offsets[1] - offsets[0]} "
                              f"bytes but shape {shape} of {dtype} needs {nbytes}")
        if offsets[1] > data_size:
            raise FormatError(f"{where}: data_offsets {offsets} extend past the data section")
        return _StEntry(dtype, shape, data_offset + offsets[0], data_offset + offsets[1], self)


def _open_safetensors(directory: str) -> Dict[str, _StEntry]:
    """All tensors of model.safetensors, or of the shards its index names."""
    single = os.path.join(directory, SINGLE_FILE)
    if os.path.exists(single):  # like transformers: a single file wins
        return dict(_StFile(single).entries)
    index_path = os.path.join(directory, INDEX_FILE)
    if not os.path.exists(index_path):
        raise FormatError(f"{directory}: no {SINGLE_FILE} or {INDEX_FILE}")
    index = _Fields(_read_json_file(index_path), index_path)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not all(
            isinstance(v, str) for v in weight_map.values()):
        raise FormatError(f"{index_path}: weight_map is not an object of shard names")
    real_dir = os.path.realpath(directory)
    files: Dict[str, _StFile] = {}
    by_shard: Dict[str, _StFile] = {}
    for shard in sorted(set(weight_map.values())):
        if (not shard or "\0" in shard or os.path.isabs(shard)
                or ".." in shard.replace("\\", "/").split("/")):
            raise FormatError(f"{index_path}: bad shard name {shard!r}")
        real = os.path.realpath(os.path.join(directory, shard))
        if os.path.commonpath([real, real_dir]) != real_dir or real == real_dir:
            raise FormatError(f"{index_path}: shard {shard!r} is outside the model directory")
        if not os.path.isfile(real):
            raise FormatError(f"{index_path}: shard {shard!r} does not exist")
        if real not in files:
            files[real] = _StFile(real)
        by_shard[shard] = files[real]
    entries: Dict[str, _StEntry] = {}
    for f in files.values():
        for name, e in f.entries.items():
            if name in entries:
                raise FormatError(f"{index_path}: tensor '{name}' is in two shards")
            entries[name] = e
    for name, shard in weight_map.items():
        if name not in entries or entries[name].file is not by_shard[shard]:
            raise FormatError(f"{index_path}: tensor '{name}' is mapped to shard {shard!r}, "
                              "which does not contain it")
    for name in entries:
        if name not in weight_map:
            raise FormatError(f"{index_path}: tensor '{name}' is in a shard but not in the index")
    return entries


def _raw(e: _StEntry) -> np.ndarray:
    return e.file.bytes[e.begin:e.end]


def _to_torch(e: _StEntry, copy: bool = True) -> torch.Tensor:
    """The tensor's data as a torch tensor (a copy unless copy=False, which
    only U8 data allows since views of the map may be misaligned)."""
    torch_dtype, _ = _ST_DTYPES[e.dtype]
    raw = _raw(e)
    if copy or e.dtype != "U8":
        raw = raw.copy()
    if raw.size == 0:
        return torch.empty(e.shape, dtype=torch_dtype)
    return torch.from_numpy(raw).view(torch_dtype).reshape(e.shape)


# ---------------------------------------------------------------------------
# PackedModel


class PackedModel:
    """An opened, fully verified packed model directory.

    Attributes: directory (str), manifest (dict: glvq_manifest.json as
    parsed), config (dict: config.json), quantization_config (dict: the
    manifest's quantization_config), quantized (weight name ->
    QuantizedTensor, components on the CPU), passthrough_names (the tensors
    stored unchanged, sorted)."""

    def __init__(self, directory: str, manifest: dict, config: dict,
                 quantized: Dict[str, QuantizedTensor], passthrough: Dict[str, _StEntry]):
        self.directory = directory
        self.manifest = manifest
        self.config = config
        self.quantization_config = manifest["quantization_config"]
        self.quantized = quantized
        self.passthrough_names = sorted(passthrough)
        self._passthrough = passthrough

    @classmethod
    def open(cls, directory, verify: bool = True) -> "PackedModel":
        """Opens and checks a packed model (docs/format.md §9).

        verify=False skips only the CRC-32C of the tensor data (every
        structural check and §5 still run). Raises FormatError for anything
        invalid, FileNotFoundError if `directory` is not a directory."""
        directory = os.fspath(directory)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"{directory}: not a directory")
        try:
            return cls._open(directory, verify)
        except FormatError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, OverflowError, RuntimeError,
                MemoryError) as e:  # a safety net: corrupt input never leaks these
            raise FormatError(f"{directory}: malformed packed model "
                              f"({type(e).__name__}: {e})") from e

    @classmethod
    def _open(cls, directory: str, verify: bool) -> "PackedModel":
        manifest_path = os.path.join(directory, MANIFEST_FILE)
        manifest = _read_json_file(manifest_path)
        mf = _Fields(manifest, manifest_path)
        fmt = mf.string("format")
        if fmt != MANIFEST_FORMAT:
            raise FormatError(f"{manifest_path}: format \"{fmt}\" is not \"{MANIFEST_FORMAT}\"")
        version = mf.integer("format_version")
        if version != FORMAT_VERSION:
            raise FormatError(f"{manifest_path}: format_version {version} is not supported "
                              f"(this reader reads {FORMAT_VERSION})")
        qconfig = _parse_quantization_config(mf.child("quantization_config"))
        tensors = mf.get("tensors")
        if not isinstance(tensors, list):
            raise FormatError(f"{manifest_path}.tensors: expected an array")
        entries: List[_Entry] = []
        for i, obj in enumerate(tensors):
            e = _parse_entry(_Fields(obj, f"{manifest_path}: tensors[{i}]"))
            if entries and not entries[-1].name.encode() < e.name.encode():
                raise FormatError(f"{e.where}: tensors are not sorted by name without "
                                  "duplicates")
            entries.append(e)
        totals = mf.child("totals")
        weights = totals.uint("weights_quantized")
        total_payload, total_bits = _check_accounting(totals, weights)
        passthrough_bytes = totals.uint("passthrough_bytes")

        config_path = os.path.join(directory, CONFIG_FILE)
        config = _read_json_file(config_path)
        cf = _Fields(config, config_path)
        if _parse_quantization_config(cf.child("quantization_config")) != qconfig:
            raise FormatError(f"{config_path}: quantization_config differs from the manifest's")

        data = _open_safetensors(directory)
        listed = set()
        for e in entries:
            if e.quantized:
                listed.update(c[0] for c in e.components.values())
            else:
                listed.add(e.name)
        for name in sorted(data):
            if name not in listed:
                raise FormatError(f"{directory}: tensor '{name}' is in the data but not listed "
                                  "in the manifest")

        quantized: Dict[str, QuantizedTensor] = {}
        passthrough: Dict[str, _StEntry] = {}
        sums = [0, 0, 0, 0]  # weights, payload, total, pass-through bytes
        for e in entries:
            if not e.quantized:
                st = _verify_bytes(f"{directory}: tensor '{e.name}'", data.get(e.name), e.dtype,
                                   e.shape, e.bytes, e.crc, verify)
                passthrough[e.name] = st
                sums[3] += e.bytes
                continue
            qt = _load_quantized(directory, e, data, verify)
            quantized[e.name] = qt
            sums[0] += qt.rows * qt.cols
            sums[1] += e.payload
            sums[2] += e.total
        if sums != [weights, total_payload, total_bits, passthrough_bytes]:
            raise FormatError(f"{manifest_path}: totals say {weights} weights, {total_payload} "
                              f"payload bits, {total_bits} total bits, {passthrough_bytes} "
                              f"pass-through bytes; the tensors sum to {sums[0]}, {sums[1]}, "
                              f"{sums[2]}, {sums[3]}")
        return cls(directory, manifest, config, quantized, passthrough)

    def passthrough(self, name: str) -> torch.Tensor:
        """A copy of pass-through tensor `name` (its stored dtype and shape).

        KeyError if the model has no such pass-through tensor."""
        if name not in self._passthrough:
            what = "is quantized" if name in self.quantized else "does not exist"
            raise KeyError(f"tensor '{name}' {what}: not a pass-through tensor of "
                           f"{self.directory}")
        return _to_torch(self._passthrough[name])

    def __repr__(self):
        return (f"PackedModel({self.directory!r}, {len(self.quantized)} quantized, "
                f"{len(self.passthrough_names)} pass-through)")


def _verify_bytes(what: str, st: Optional[_StEntry], dtype: str, shape: Sequence[int],
                  nbytes: int, crc: int, verify: bool) -> _StEntry:
    if st is None:
        raise FormatError(f"{what}: listed in the manifest but missing from the data")
    if st.dtype != dtype or list(st.shape) != list(shape) or st.end - st.begin != nbytes:
        raise FormatError(f"{what}: manifest says {dtype} {list(shape)} ({nbytes} bytes), data "
                          f"has {st.dtype} {st.shape} ({st.end - st.begin} bytes)")
    if verify:
        actual = crc32c(_raw(st))
        if actual != crc:
            raise FormatError(f"{what}: CRC32C mismatch: manifest says {crc:08x}, data has "
                              f"{actual:08x}")
    return st


def _load_quantized(directory: str, e: _Entry, data: Dict[str, _StEntry],
                    verify: bool) -> QuantizedTensor:
    what = f"{directory}: quantized tensor '{e.name}'"
    components = {}
    for cname, (tensor, dtype, shape, nbytes, crc) in e.components.items():
        st = _verify_bytes(f"{what} component '{tensor}'", data.get(tensor), dtype, shape,
                           nbytes, crc, verify)
        components[cname] = _to_torch(st, copy=cname != "codes")
    qt = QuantizedTensor(name=e.name, method=e.method, rows=e.shape[0], cols=e.shape[1],
                         group_size=e.group_size, dim=e.dim, dtype=e.dtype,
                         components=components, tile_rows=e.tile_rows)
    try:
        validate_quantized(qt)
    except FormatError as err:
        raise FormatError(f"{directory}: {err}") from None
    if qt.num_groups != e.num_groups:
        raise FormatError(f"{what}: manifest says {e.num_groups} groups, data has "
                          f"{qt.num_groups}")
    payload, total = accounting(qt)
    if (payload, total) != (e.payload, e.total):
        raise FormatError(f"{what}: manifest says bits_payload {e.payload}, bits_total "
                          f"{e.total}; the data has {payload}, {total}")
    return qt
