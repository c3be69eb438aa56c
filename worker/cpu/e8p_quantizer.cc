#include "worker/cpu/e8p_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/e8p.h"
#include "worker/cpu/e8p_codebook.h"
#include "worker/engine/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using e8p::kDim;
using engine::Quantizer;
using Eigen::MatrixXd;

// Rows never interact in BlockLDLQ (the feedback runs along a row), so
// blocks of rows are independent tasks; a fixed block size keeps every
// product identical whatever the thread count.
constexpr int64_t kRowsPerTask = 64;
// Columns whose feedback onto the rest of the matrix is applied as one
// product (a multiple of kDim, so blocks never straddle a batch).
constexpr int64_t kLazyBatch = 128;

engine::QuantizerConfig WithRht(engine::QuantizerConfig c) {
  c.rht = true;
  return c;
}

// Indices laid out as the "e8p" tensor stores them: group after group,
// each rows × VectorsPerRow(g) row-major.
struct E8pCodes {
  E8pCodes(int64_t num_rows, int64_t num_cols, int64_t columns_per_group)
      : rows(num_rows), cols(num_cols), group_size(columns_per_group),
        indices(static_cast<size_t>(
            rows * ((cols / group_size) * (group_size / kDim) +
                    E8pVectorsPerRow(cols % group_size)))) {}

  uint16_t& at(int64_t g, int64_t r, int64_t v) {
    const int64_t per_row = E8pVectorsPerRow(std::min(group_size, cols - g * group_size));
    return indices[rows * g * (group_size / kDim) + r * per_row + v];
  }

  int64_t rows, cols, group_size;
  std::vector<uint16_t> indices;
};

class E8pQuantizer final : public Quantizer {
 public:
  E8pQuantizer(const engine::QuantizerConfig& c, E8pOptions options)
      : Quantizer(WithRht(c)), options_(options) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, engine::QuantizeResult* result) const override {
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
      Sweep(p, w, scales, &u, &codes, &drifted);
      scales = GroupScales(drifted);
    }
    Sweep(p, w, scales, feedback ? &u : nullptr, &codes, nullptr);
    return Assemble(p, scales, codes, result);
  }

 private:
  // Runs SweepRows over fixed row blocks in parallel (rows are independent
  // under BlockLDLQ); `drifted`, if given, receives the swept weights.
  void Sweep(const Problem& p, const MatrixXd& w, const std::vector<float>& scales,
             const MatrixXd* u, E8pCodes* codes, MatrixXd* drifted) const {
    const int64_t tasks = (p.w.rows + kRowsPerTask - 1) / kRowsPerTask;
    engine::ParallelFor(tasks, config().threads, [&](int64_t t) {
      const int64_t r0 = t * kRowsPerTask, r1 = std::min(p.w.rows, r0 + kRowsPerTask);
      MatrixXd rows = w.middleRows(r0, r1 - r0);
      SweepRows(scales, u, r0, &rows, codes);
      if (drifted != nullptr) drifted->middleRows(r0, r1 - r0) = rows;
    });
  }

  // RMS(W_g) / 1.03 as the F32 the format stores; a group of zeros gets the
  // smallest normal float, so that its error stays negligible.
  std::vector<float> GroupScales(const MatrixXd& w) const {
    const int64_t gs = config().group_size, groups = (w.cols() + gs - 1) / gs;
    std::vector<float> scales(static_cast<size_t>(groups));
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t c0 = g * gs, width = std::min(gs, w.cols() - c0);
      const double rms = std::sqrt(w.middleCols(c0, width).squaredNorm() /
                                   static_cast<double>(w.rows() * width));
      const float s = static_cast<float>(rms / kE8pGaussianScale);
      scales[g] = s >= std::numeric_limits<float>::min() ? s : std::numeric_limits<float>::min();
    }
    return scales;
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

  // BlockLDLQ (or plain rounding when u is null) over the rows in `w`
  // (rows r0 … of the tensor), which are left as rounded against.
  void SweepRows(const std::vector<float>& scales, const MatrixXd* u, int64_t r0, MatrixXd* wp,
                 E8pCodes* codes) const {
    MatrixXd& w = *wp;
    const int64_t m = w.rows(), n = w.cols(), gs = config().group_size;
    MatrixXd feedback(m, kLazyBatch);  // (W_B − Ŵ_B) U_BB⁻¹ of the batch's blocks
    for (int64_t b0 = 0; b0 < n; b0 += kLazyBatch) {
      const int64_t b1 = std::min(b0 + kLazyBatch, n);
      for (int64_t c0 = b0; c0 < b1; c0 += kDim) {
        const int k = static_cast<int>(std::min<int64_t>(kDim, n - c0));
        const MatrixXd err = RoundBlock(w, c0, k, r0, scales[c0 / gs], codes);
        if (u == nullptr) continue;
        const auto u_bb = u->block(c0, c0, k, k).triangularView<Eigen::Upper>();
        feedback.middleCols(c0 - b0, k) = u_bb.transpose().solve(err.transpose()).transpose();
        const int64_t rest = b1 - c0 - k;
        w.middleCols(c0 + k, rest).noalias() -=
            feedback.middleCols(c0 - b0, k) * u->block(c0, c0 + k, k, rest);
      }
      if (u != nullptr && b1 < n) {
        w.rightCols(n - b1).noalias() -=
            feedback.leftCols(b1 - b0) * u->block(b0, b1, b1 - b0, n - b1);
      }
    }
  }

  absl::Status Assemble(const Problem& p, const std::vector<float>& scales,
                        const E8pCodes& codes, engine::QuantizeResult* result) const {
    QuantizedTensor t = engine::MakeTensorShell(p, config(), "e8p", kDim);
    t.bits.assign(static_cast<size_t>(p.num_groups), 2);
    t.scale = scales;
    RETURN_IF_ERROR(PackE8pCodes(codes.indices, &t));
    for (engine::GroupStats& g : result->groups) g.bits = 2;
    result->tensor = std::move(t);
    return absl::OkStatus();
  }

  E8pOptions options_;
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeE8pQuantizer(const engine::QuantizerConfig& config,
                                                    E8pOptions options) {
  return std::make_unique<E8pQuantizer>(config, options);
}

}  // namespace glvq::cpu
