// The output assembler's core: the committed ranges of one tensor become
// the tensor's packed form, as if it had been quantized in one piece.
//
// Ranges of independent groups (the only tensors the planner splits) hold
// exactly the bytes the whole tensor holds for the same groups, so putting
// them together is concatenation: bits, codes, generators, mu and scale in
// group order, each range's offsets shifted by the codes before it, and
// rtn's [G, rows] scale and zero (group-major) concatenated as well.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"
#include "common/quant/result.h"

namespace glvq::coordinator {

// One committed range: groups [first_group, first_group + G_part) of a
// tensor, as the worker quantized it (cols = the range's width, groups
// numbered from 0).
struct TensorPart {
  uint32_t first_group = 0;
  QuantizedTensor tensor;
  quant::QualitySums sums;
};

// Assembles the parts of one tensor of `cols` columns. The parts may come in
// any order but must tile the tensor's groups exactly and agree on name,
// method, source dtype, rows, group size and dim; INVALID_ARGUMENT
// otherwise. A single part is returned as is (its quality is the engine's);
// several parts get the quality of their combined sums (cross-range Hessian
// terms excluded, see quant::QualitySums). The result is validated.
absl::StatusOr<QuantizedTensor> AssembleTensor(std::vector<TensorPart> parts, int64_t cols);

}  // namespace glvq::coordinator
