// Single steps of the CUDA engine with host inputs and outputs, each the
// twin of a CPU function it is tested against (tests/gpu/): Babai rounding
// (cpu::BabaiCoordinates), code packing (PackGroupCodes) and dequantizing
// (DequantizeRef). They run on the current CUDA device.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"
#include "worker/engine/quantizer.h"

namespace glvq::cuda {

// Babai codes of every group of `w` (groups of `group_size` columns, the
// last possibly narrower) for given per-group bits, scale (> 0), µ and
// generator G (dim × dim): code = clamp(⌊G⁻¹ F_µ(w/s)⌋) + 2^(b−1) per
// d-vector. Returns rows × cols codes in w's layout. INVALID_ARGUMENT when
// the per-group arrays do not match the groups.
struct BabaiInput {
  engine::MatrixView w;
  int64_t group_size = 128;
  int dim = 8;
  std::vector<int32_t> bits;       // [groups]
  std::vector<float> scale;        // [groups]
  std::vector<double> mu;          // [groups]
  std::vector<Eigen::MatrixXd> g;  // [groups]
};
absl::StatusOr<std::vector<uint8_t>> BabaiCodesOnDevice(const BabaiInput& in);

// PackGroupCodes on the device: the same contract and the same bytes.
absl::Status PackGroupCodesOnDevice(std::span<const uint8_t> unpacked, QuantizedTensor* qt);

// DequantizeRef for a GLVQ tensor without RHT, bit for bit: rows × cols F32
// into `out`. INVALID_ARGUMENT for an invalid tensor, a wrong output size
// or a weight that decodes to a non-finite value (as DequantizeRef);
// UNIMPLEMENTED for other methods and for tensors with rht_seed or row_scale.
absl::Status DequantizeOnDevice(const QuantizedTensor& qt, std::span<float> out);

}  // namespace glvq::cuda
