"""Loading glvq output with transformers.

Importing this module (``import glvq`` does it when transformers is
installed) registers the ``glvq`` quantization method with transformers'
public registration API, so that

    model = transformers.AutoModelForCausalLM.from_pretrained(PACKED_DIR)

loads a packed glvq directory (docs/format.md) of any method: glvq, rtn,
gptq, e8p, pvq, trellis, and SDBA's mixed widths. Each quantized
``nn.Linear`` becomes a :class:`GlvqLinear` that keeps the packed codes and
side information and decodes its weight on the fly in every forward pass
(on the device its buffers live on), so the resident memory of the linear
layers is the packed bytes plus one decoded weight at a time.

The packed directory is verified (every checksum, every validity rule of
the format) before any module is replaced; a corrupt or truncated file
raises :class:`glvq.FormatError`.
"""

import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers.quantizers import HfQuantizer, register_quantization_config, register_quantizer
from transformers.utils.quantization_config import QuantizationConfigMixin

from .decode import _M64, dequantize, transform_forward, transform_inverse
from .packed import FormatError, PackedModel, QuantizedTensor

QUANT_METHOD = "glvq"
FORMAT_VERSION = 1
_WEIGHT_SUFFIX = ".weight"


@register_quantization_config(QUANT_METHOD)
class GlvqConfig(QuantizationConfigMixin):
    """``config.json``'s ``quantization_config`` of a glvq directory.

    ``method``, ``bits``, ``lattice_dim`` and ``group_size`` are the job's
    defaults; any further key is a method parameter (docs/format.md §6),
    kept as given. The per-tensor truth is in ``glvq_manifest.json``.
    """

    _FIXED = ("quant_method", "format_version", "method", "bits", "lattice_dim", "group_size")

    def __init__(self, method="glvq", bits=2.0, lattice_dim=8, group_size=128,
                 format_version=FORMAT_VERSION, **parameters):
        self.quant_method = QUANT_METHOD
        if format_version != FORMAT_VERSION:
            raise FormatError(f"quantization_config: format_version {format_version} is not "
                              f"supported (this reader reads {FORMAT_VERSION})")
        self.format_version = format_version
        self.method = method
        self.bits = bits
        self.lattice_dim = lattice_dim
        self.group_size = group_size
        self.parameters = dict(parameters)

    def to_dict(self):
        d = {key: getattr(self, key) for key in self._FIXED}
        d.update(self.parameters)
        return d

    @classmethod
    def from_dict(cls, config_dict, return_unused_kwargs=False, **kwargs):
        d = dict(config_dict)
        d.pop("quant_method", None)
        config = cls(**d)
        return (config, kwargs) if return_unused_kwargs else config


class GlvqLinear(nn.Module):
    """A linear layer whose weight stays packed.

    The components of one quantized tensor are non-persistent buffers
    (``<component>``, e.g. ``codes``, ``scale``). ``forward`` decodes the
    weight into the input's dtype, multiplies and drops it. A tensor stored
    in a rotated basis (``rht_seed``: W = T_mᵀ W̃ T_n) is not rotated back:
    the layer computes y = T_mᵀ (W̃ (T_n x)) instead, which costs O(n log n)
    per token rather than two transforms of the whole matrix per call.
    ``bias`` is the source's bias parameter, if it had one (loaded by
    transformers).
    """

    def __init__(self, in_features, out_features, bias, name):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight_name = name
        self._spec = None  # the QuantizedTensor, without its components
        self._component_names = ()
        self._seeds = None  # (row seed, column seed) of the rotation, if any
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)

    def attach(self, qt, device):
        """Takes (copies) the packed components of `qt`, checked against this
        layer's shape; the copy lets the file's memory map go."""
        if (qt.rows, qt.cols) != (self.out_features, self.in_features):
            raise FormatError(f"{qt.name}: shape [{qt.rows}, {qt.cols}] does not match the model's "
                              f"[{self.out_features}, {self.in_features}]")
        comps = dict(qt.components)
        seed = comps.pop("rht_seed", None)
        if seed is not None:
            self._seeds = tuple(int(v) & _M64 for v in seed.tolist())
        self._component_names = tuple(sorted(comps))
        for key in self._component_names:
            self.register_buffer(key, comps[key].to(device, copy=True), persistent=False)
        self._spec = qt

    def packed(self):
        """The layer's QuantizedTensor, on the buffers' device, without its
        rotation: it decodes to W̃ when the layer has one."""
        if self._spec is None:
            raise RuntimeError(f"{self.weight_name}: packed weight not loaded")
        comps = {key: getattr(self, key) for key in self._component_names}
        s = self._spec
        return QuantizedTensor(name=s.name, method=s.method, rows=s.rows, cols=s.cols,
                               group_size=s.group_size, dim=s.dim, dtype=s.dtype, components=comps,
                               tile_rows=s.tile_rows)

    def dequantized_weight(self, dtype=torch.float32):
        """The decoded weight W, [out_features, in_features], on the buffers' device."""
        w = dequantize(self.packed(), dtype=torch.float64 if self._seeds else dtype)
        if self._seeds:
            w = transform_inverse(transform_inverse(w, self._seeds[1]).t(), self._seeds[0]).t()
        return w.to(dtype)

    def forward(self, x):
        w = dequantize(self.packed(), dtype=x.dtype)
        if self._seeds:
            x = transform_forward(x, self._seeds[1])
        y = F.linear(x, w)
        if self._seeds:
            y = transform_inverse(y, self._seeds[0])
        return y if self.bias is None else y + self.bias.to(y.dtype)

    @property
    def packed_bytes(self):
        rht = 16 if self._seeds else 0  # the two I64 seeds of rht_seed
        return rht + sum(getattr(self, k).numel() * getattr(self, k).element_size()
                         for k in self._component_names)

    def extra_repr(self):
        s = self._spec
        what = f"{s.method}, dim={s.dim}, group_size={s.group_size}" if s else "not loaded"
        return f"in_features={self.in_features}, out_features={self.out_features}, {what}"


def _module_name(weight_name):
    if not weight_name.endswith(_WEIGHT_SUFFIX):
        raise FormatError(f"{weight_name}: a quantized tensor must be a '.weight' of a linear layer")
    return weight_name[: -len(_WEIGHT_SUFFIX)]


def _replace_linears(model, packed):
    """Puts a GlvqLinear in place of every nn.Linear whose weight is quantized."""
    for weight_name in packed.quantized:
        module_name = _module_name(weight_name)
        try:
            linear = model.get_submodule(module_name)
        except AttributeError:
            raise FormatError(f"{weight_name}: the model has no module '{module_name}'") from None
        if not isinstance(linear, nn.Linear):
            raise FormatError(f"{weight_name}: '{module_name}' is a {type(linear).__name__}, "
                              "not a linear layer")
        parent_name, _, child = module_name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, GlvqLinear(linear.in_features, linear.out_features,
                                          linear.bias is not None, weight_name))


def _model_device(model):
    for p in model.parameters():
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


@register_quantizer(QUANT_METHOD)
class GlvqHfQuantizer(HfQuantizer):
    """Loads prequantized glvq directories (glvq cannot quantize inside transformers)."""

    requires_calibration = True

    def __init__(self, quantization_config, **kwargs):
        super().__init__(quantization_config, **kwargs)
        self._packed = None

    def validate_environment(self, *args, **kwargs):
        if not self.pre_quantized:
            raise ValueError("glvq quantizes with the glvq service (glvq quantize); "
                             "transformers can only load its output")

    def _process_model_before_weight_loading(self, model, checkpoint_files=None, **kwargs):
        if not checkpoint_files:
            raise FormatError("glvq: a packed model loads from a directory of safetensors files")
        directory = os.path.dirname(os.path.abspath(checkpoint_files[0]))
        # transformers builds the model under a meta-device context; the
        # packed components are read (and checked) as real CPU tensors.
        with torch.device("cpu"):
            self._packed = PackedModel.open(directory)
        expected = dict(self._packed.quantization_config)
        if expected != self.quantization_config.to_dict():
            raise FormatError(f"{directory}: config.json's quantization_config differs from "
                              "the manifest's")
        _replace_linears(model, self._packed)
        ignore = set(model._keys_to_ignore_on_load_unexpected or ())
        model._keys_to_ignore_on_load_unexpected = ignore | {r"\.glvq\."}
        return model

    def _process_model_after_weight_loading(self, model, **kwargs):
        # After loading, outside transformers' meta-device context: the
        # packed components become real buffers where the model lives.
        device = _model_device(model)
        for module in model.modules():
            if isinstance(module, GlvqLinear):
                module.attach(self._packed.quantized[module.weight_name], device)
        self._packed = None
        return model

    def is_serializable(self, safe_serialization=None):
        return False

    @property
    def is_trainable(self):
        return False


def decode_all(model, dtype=torch.bfloat16):
    """Replaces every GlvqLinear of `model` by an nn.Linear holding its decoded
    weight in `dtype`: dense speed at dense memory, for when memory allows
    and speed matters more (without fused kernels, decoding on every forward
    pass is slow). Returns `model`."""
    for name, module in list(model.named_modules()):
        if not isinstance(module, GlvqLinear):
            continue
        dense = nn.Linear(module.in_features, module.out_features, bias=module.bias is not None,
                          device=module.codes.device if hasattr(module, "codes") else None,
                          dtype=dtype)
        with torch.no_grad():
            dense.weight.copy_(module.dequantized_weight(dtype=torch.float32))
            if module.bias is not None:
                dense.bias.copy_(module.bias)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, dense)
    return model


def packed_linear_bytes(model):
    """Bytes held by the packed components of every GlvqLinear of `model`."""
    return sum(m.packed_bytes for m in model.modules() if isinstance(m, GlvqLinear))
