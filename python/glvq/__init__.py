"""glvq: reader and decoders of the glvq packed format (docs/format.md).

    from glvq import PackedModel, dequantize
    model = PackedModel.open("path/to/packed")      # verifies everything
    w = dequantize(model.quantized["model.layers.0.mlp.up_proj.weight"])
"""

import importlib.util

from .packed import FormatError, PackedModel, QuantizedTensor
from .decode import dequantize

__version__ = "0.1.0"

__all__ = ["FormatError", "PackedModel", "QuantizedTensor", "dequantize", "__version__"]

# With transformers installed, importing glvq registers the "glvq"
# quantization method with it (glvq.hf), so that
# AutoModelForCausalLM.from_pretrained(PACKED_DIR) works. Without it, glvq is
# a reader and decoder only and never imports transformers.
if importlib.util.find_spec("transformers") is not None:
    from . import hf  # noqa: E402,F401  (registration is the import's effect)
