#include "worker/cpu/e8p_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/e8p.h"
#include "worker/cpu/block_ldlq.h"
#include "worker/cpu/e8p_codebook.h"
#include "worker/engine/problem.h"
#include "worker/engine/rht.h"

namespace glvq::cpu {
namespace {

using e8p::kDim;
using engine::Quantizer;
using Eigen::MatrixXd;

// Indices laid out as the "e8p" tensor stores them (E8pIndicesView).
struct E8pCodes {
  E8pCodes(int64_t num_rows, int64_t num_cols, int64_t columns_per_group)
      : view{nullptr, num_rows, num_cols, columns_per_group},
        indices(static_cast<size_t>(view.size())) {
    view.indices = indices.data();
  }

  uint16_t& at(int64_t g, int64_t r, int64_t v) { return view.at(g, r, v); }

  E8pIndicesView view;
  std::vector<uint16_t> indices;
};

class E8pQuantizer final : public Quantizer {
 public:
  E8pQuantizer(const quant::QuantizerConfig& c, E8pOptions options)
      : Quantizer(engine::WithRht(c)), options_(options) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const bool feedback = options_.block_ldlq && !p.hessian.is_identity();
    const MatrixXd u = feedback ? p.hessian.InverseCholeskyUpper() : MatrixXd();
    E8pCodes codes(p.w.rows, p.w.cols, config().group_size);
    MatrixXd w = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                                Eigen::RowMajor>>(p.w.data, p.w.rows, p.w.cols)
                     .cast<double>();
    std::vector<float> scales = GroupScales(w);
    if (feedback) {
      // BlockLDLQ moves later columns by the earlier blocks' errors, on
      // outlier-heavy Hessians far beyond their original RMS: a trial sweep
      // records the weights each block is really rounded against, and the
      // scales are taken from those.
      MatrixXd drifted(p.w.rows, p.w.cols);
      Sweep(w, scales, &u, &codes, &drifted);
      scales = GroupScales(drifted);
    }
    Sweep(w, scales, feedback ? &u : nullptr, &codes, nullptr);
    return Assemble(p, scales, codes, result);
  }

 private:
  // BlockLDLQ (or plain rounding when u is null) with scales per group;
  // `drifted`, if given, receives the swept weights.
  void Sweep(const MatrixXd& w, const std::vector<float>& scales, const MatrixXd* u,
             E8pCodes* codes, MatrixXd* drifted) const {
    const int64_t gs = config().group_size;
    SweepBlockLdlq(
        w, kDim, u, config().threads,
        [&](const MatrixXd& rows, int64_t c0, int64_t k, int64_t r0) {
          return RoundBlock(rows, c0, static_cast<int>(k), r0, scales[c0 / gs], codes);
        },
        drifted);
  }

  std::vector<float> GroupScales(const MatrixXd& w) const {
    return E8pGroupScales(w, config().group_size);
  }

  // Rounds the k (<= 8) columns from c0 of every row of `w` to codewords and
  // returns the errors W_B − Ŵ_B (rows × k).
  MatrixXd RoundBlock(const MatrixXd& w, int64_t c0, int k, int64_t r0, double scale,
                      E8pCodes* codes) const {
    const E8pCodebook& codebook = E8pCodebook::Get();
    const int64_t gs = config().group_size, g = c0 / gs, v = (c0 - g * gs) / kDim;
    MatrixXd err(w.rows(), k);
    double x[kDim];
    for (int64_t r = 0; r < w.rows(); ++r) {
      for (int i = 0; i < k; ++i) x[i] = w(r, c0 + i) / scale;
      const uint16_t index = codebook.Nearest(x, k);
      codes->at(g, r0 + r, v) = index;
      const std::array<double, kDim>& c = codebook.Codeword(index);
      for (int i = 0; i < k; ++i) err(r, i) = w(r, c0 + i) - scale * c[i];
    }
    return err;
  }

  absl::Status Assemble(const Problem& p, const std::vector<float>& scales,
                        const E8pCodes& codes, quant::QuantizeResult* result) const {
    return AssembleE8pTensor(p, config(), scales, codes.indices, result);
  }

  E8pOptions options_;
};

}  // namespace

float E8pScaleOf(double sum_squares, int64_t count) {
  const double rms = std::sqrt(sum_squares / static_cast<double>(count));
  const float s = static_cast<float>(rms / kE8pGaussianScale);
  return s >= std::numeric_limits<float>::min() ? s : std::numeric_limits<float>::min();
}

std::vector<float> E8pGroupScales(const Eigen::MatrixXd& w, int64_t group_size) {
  const int64_t groups = (w.cols() + group_size - 1) / group_size;
  std::vector<float> scales(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t c0 = g * group_size, width = std::min(group_size, w.cols() - c0);
    scales[g] = E8pScaleOf(w.middleCols(c0, width).squaredNorm(), w.rows() * width);
  }
  return scales;
}

absl::Status AssembleE8pTensor(const engine::Quantizer::Problem& p,
                               const quant::QuantizerConfig& config,
                               const std::vector<float>& scales,
                               const std::vector<uint16_t>& indices,
                               quant::QuantizeResult* result) {
  QuantizedTensor t = engine::MakeTensorShell(p, config, kDim);
  t.bits.assign(static_cast<size_t>(p.num_groups), 2);
  t.scale = scales;
  RETURN_IF_ERROR(PackE8pCodes(indices, &t));
  for (quant::GroupStats& g : result->groups) g.bits = 2;
  result->tensor = std::move(t);
  return absl::OkStatus();
}

std::unique_ptr<engine::Quantizer> MakeE8pQuantizer(const quant::QuantizerConfig& config,
                                                    E8pOptions options) {
  return std::make_unique<E8pQuantizer>(config, options);
}

}  // namespace glvq::cpu
