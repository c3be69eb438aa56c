// E8P (docs/algorithms.md §3.3): QuIP#'s 2-bit E8 codebook behind the engine's
// Quantizer interface, as a reference point for a fixed good lattice.
//  - RHT on both sides is always on (the codebook is tuned for the near-
//    Gaussian, unit-RMS weights it produces);
//  - per column group, scale_g = RMS(W̃_g) / 1.03, so the codebook sees
//    weights at its best Gaussian scale;
//  - BlockLDLQ over blocks of 8 columns: U = chol(H̃⁻¹) upper, and after
//    block B is rounded, W_R −= (W_B − Ŵ_B) U_BB⁻¹ U_BR for the columns R
//    after it (lazily, in batches of 128 columns, at GEMM speed).
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <memory>
#include <vector>

#include "worker/engine/quantizer.h"

namespace glvq::cpu {

struct E8pOptions {
  // BlockLDLQ error feedback; off = plain nearest-codeword rounding (for
  // measuring what the feedback buys).
  bool block_ldlq = true;
};

// `config.method` must be kE8p and valid (see quant::ValidateConfig);
// config.rht is forced on.
std::unique_ptr<engine::Quantizer> MakeE8pQuantizer(const quant::QuantizerConfig& config,
                                                    E8pOptions options = {});

// Pieces the CUDA engine shares (worker/cuda/scalar_quantizer.cc):
// a group's scale RMS / 1.03 from its sum of squares over `count` weights,
// as the F32 the format stores (a group of zeros gets the smallest normal
// float, so that its error stays negligible);
float E8pScaleOf(double sum_squares, int64_t count);
// every group's scale of `w` (rows × cols);
std::vector<float> E8pGroupScales(const Eigen::MatrixXd& w, int64_t group_size);
// the "e8p" tensor from per-group scales and indices laid out as
// E8pIndicesView (e8p_search.h) says.
absl::Status AssembleE8pTensor(const engine::Quantizer::Problem& p,
                               const quant::QuantizerConfig& config,
                               const std::vector<float>& scales,
                               const std::vector<uint16_t>& indices,
                               quant::QuantizeResult* result);

}  // namespace glvq::cpu
