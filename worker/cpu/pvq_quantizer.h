// PVQ, pyramid vector quantization (docs/algorithms.md §2), behind the engine's
// Quantizer interface, packed as the format's "pvq" method
// (docs/format.md §4.7):
//  - RHT on both sides is always on: it makes every row's direction near
//    uniform, which the gain levels assume;
//  - each row is normalised by its norm (stored as F32); its D-vectors
//    (D consecutive columns) are coded as a shape y ∈ P(D, K) (greedy pulse
//    projection, enumeration index) and a gain code on levels designed for
//    the Beta density of a D-vector's share of the row
//    (worker/cpu/pvq_gain.h). When D does not divide the row, its last
//    vector of k < D columns gets its own pyramid P(k, K') and levels, so
//    that it costs no more than k · bits either;
//  - K and the gain bits come from the target rate (worker/cpu/pvq_rate.h);
//  - with a Hessian, BlockLDLQ over blocks of D columns as E8P does
//    (worker/cpu/e8p_quantizer.h): U = chol(H̃⁻¹) upper, and after block B
//    is coded, W_R −= (W_B − Ŵ_B) U_BB⁻¹ U_BR for the later columns R. The
//    row norms are then those of the weights a trial sweep actually codes.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "worker/engine/quantizer.h"

namespace glvq::cpu {

// `config.method` must be kPvq and valid (see quant::ValidateConfig);
// config.rht is forced on. Chooses the rate split (ChoosePvqRate) and
// builds the pyramid's tables once.
absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakePvqQuantizer(
    const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
