// The quantizer interface every method implements (faiss-style: configure,
// quantize, decode, account), and the factory that builds one from a
// QuantizerConfig (common/quant/config.h); results are common/quant/result.h.
//
// Ownership: views (MatrixView, HessianView) borrow caller memory for the
// duration of the call; results own everything they hold.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/packed/quantized_tensor.h"
#include "common/quant/config.h"
#include "common/quant/result.h"

namespace glvq::engine {

// A rows × cols row-major F32 weight matrix (out × in features).
struct MatrixView {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
};

// An n × n row-major Hessian of the layer's inputs (n == cols), undamped;
// the quantizer validates (finite, symmetric, PSD after damping) and damps.
// A task that quantizes a range of column groups passes the diagonal block
// of the tensor's Hessian over its columns; `mean_diagonal` then carries
// mean(diag H) of the whole Hessian, so that the block is damped exactly as
// the whole tensor would be (damping is what couples the groups).
struct HessianView {
  const double* data = nullptr;
  int64_t n = 0;
  double mean_diagonal = 0;  // > 0: damp by this instead of the block's own mean
};

class Quantizer {
 public:
  virtual ~Quantizer() = default;
  const quant::QuantizerConfig& config() const { return config_; }

  struct Problem;  // validated inputs, defined in worker/engine/problem.h

  // Quantizes every column group of `w`. `name` identifies the tensor (it is
  // stored and seeds derive from it); `hessian` may be null (plain weight
  // MSE). INVALID_ARGUMENT for NaN/Inf weights, empty shapes, a Hessian of
  // the wrong size or not symmetric / not PSD after damping. With
  // config().rht the method works on W̃ = T_m W T_nᵀ and H̃ = T_n H T_nᵀ
  // (common/packed/hadamard.h) and the tensor carries rht_seed; quality is
  // always measured on the original W and H.
  absl::StatusOr<quant::QuantizeResult> Quantize(std::string_view name, MatrixView w,
                                          const HessianView* hessian) const;

  // Dense weights of a packed tensor (rows*cols floats into `out`).
  static absl::Status Decode(const QuantizedTensor& tensor, std::span<float> out) {
    return DequantizeRef(tensor, out);
  }

 protected:
  explicit Quantizer(quant::QuantizerConfig config) : config_(std::move(config)) {}
  // The method proper: fills result->tensor (codes and side information)
  // and result->groups; the base class decodes and measures.
  virtual absl::Status QuantizeImpl(const Problem& problem, quant::QuantizeResult* result) const = 0;

 private:
  // QuantizeImpl on the randomized-Hadamard-transformed problem
  // (config.rht); sets result->tensor.rht_seed.
  absl::Status QuantizeTransformed(const Problem& p, quant::QuantizeResult* result) const;

  quant::QuantizerConfig config_;
};

// Validates `config` and builds its quantizer.
absl::StatusOr<std::unique_ptr<Quantizer>> MakeQuantizer(const quant::QuantizerConfig& config);

}  // namespace glvq::engine
