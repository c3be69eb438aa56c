#include "worker/cpu/glvq_quantizer.h"

#include <cmath>

#include "common/base/status_macros.h"
#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_group.h"
#include "worker/cpu/sdba.h"
#include "worker/engine/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using engine::Quantizer;
using Eigen::MatrixXd;

MatrixXd ToMatrix(const engine::MatrixView& w) {
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
             w.data, w.rows, w.cols)
      .cast<double>();
}

// Ŵ_g as the decoder will compute it, for error feedback.
MatrixXd DecodeGroup(const GroupSolution& s, int64_t rows, int64_t width, int64_t d, int bits) {
  const double offset = std::ldexp(1.0, bits - 1) - 0.5;
  MatrixXd out(rows, width);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c0 = 0; c0 < width; c0 += d) {
      const int64_t k = std::min(d, width - c0);
      Eigen::VectorXd z(k);
      for (int64_t i = 0; i < k; ++i) z[i] = s.codes[r * width + c0 + i] - offset;
      const Eigen::VectorXd y = s.g.topLeftCorner(k, k) * z;
      for (int64_t i = 0; i < k; ++i) out(r, c0 + i) = s.scale * Expand(y[i], s.mu);
    }
  }
  return out;
}

class GlvqQuantizer final : public Quantizer {
 public:
  explicit GlvqQuantizer(const engine::QuantizerConfig& c) : Quantizer(c) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, engine::QuantizeResult* result) const override {
    const engine::QuantizerConfig& c = config();
    MatrixXd w = ToMatrix(p.w);
    std::vector<int> bits(static_cast<size_t>(p.num_groups), static_cast<int>(c.bits));
    if (c.sdba) {
      auto allocated = AllocateBits(w, p.hessian, c.group_size, c.bits);
      if (!allocated.ok()) {
        return absl::InvalidArgumentError(p.name + ": " + std::string(allocated.status().message()));
      }
      bits = *std::move(allocated);
    }
    std::vector<GroupSolution> solutions(static_cast<size_t>(p.num_groups));
    auto solve = [&](int64_t g, const MatrixXd& source, const MatrixXd& hg) {
      const int64_t c0 = g * c.group_size;
      const MatrixXd wg = source.middleCols(c0, hg.cols());
      solutions[g] = SolveGlvqGroup({&wg, &hg, p.hessian.is_identity(), bits[g], c.dim, c.glvq});
    };
    if (c.ldlq && !p.hessian.is_identity()) {
      SolveWithFeedback(p, bits, &w, solve, &solutions);
    } else {
      engine::ParallelFor(p.num_groups, c.threads, [&](int64_t g) {
        const int64_t c0 = g * c.group_size;
        solve(g, w, p.hessian.Block(c0, std::min<int64_t>(c.group_size, p.w.cols - c0)));
      });
    }
    return Assemble(p, bits, solutions, result);
  }

 private:
  // BlockLDLQ across groups: each group is learned on weights that already
  // absorbed the earlier groups' errors, W_R −= (W_B − Ŵ_B) U_BB⁻¹ U_BR.
  // Since later columns will absorb part of this group's error, the group's
  // objective is (U_BBᵀ U_BB)⁻¹ (the Schur complement of H over the columns
  // not yet quantized), not the plain diagonal block H_BB.
  template <typename Solve>
  void SolveWithFeedback(const Problem& p, const std::vector<int>& bits, MatrixXd* w,
                         Solve& solve, std::vector<GroupSolution>* solutions) const {
    const int64_t gs = config().group_size;
    const MatrixXd u = p.hessian.InverseCholeskyUpper();
    for (int64_t g = 0; g < p.num_groups; ++g) {
      const int64_t c0 = g * gs, width = std::min(gs, p.w.cols - c0), rest = p.w.cols - c0 - width;
      const auto u_bb = u.block(c0, c0, width, width).triangularView<Eigen::Upper>();
      const MatrixXd u_inv = u_bb.solve(MatrixXd::Identity(width, width));
      const MatrixXd h_eff = u_inv * u_inv.transpose();
      solve(g, *w, 0.5 * (h_eff + h_eff.transpose()));
      if (rest == 0) break;
      const MatrixXd err = w->middleCols(c0, width) -
                           DecodeGroup((*solutions)[g], p.w.rows, width, config().dim, bits[g]);
      w->rightCols(rest).noalias() -= err * u_inv * u.block(c0, c0 + width, width, rest);
    }
  }

  absl::Status Assemble(const Problem& p, const std::vector<int>& bits,
                        const std::vector<GroupSolution>& solutions,
                        engine::QuantizeResult* result) const {
    const int64_t d = config().dim;
    QuantizedTensor t = engine::MakeTensorShell(p, config(), "glvq", d);
    std::vector<uint8_t> unpacked;
    unpacked.reserve(static_cast<size_t>(p.w.rows * p.w.cols));
    for (int64_t g = 0; g < p.num_groups; ++g) {
      const GroupSolution& s = solutions[g];
      t.bits.push_back(static_cast<uint8_t>(bits[g]));
      t.scale.push_back(s.scale);
      t.mu.push_back(s.mu);
      for (int64_t i = 0; i < d; ++i) {
        for (int64_t j = 0; j < d; ++j) t.generators.push_back(static_cast<float>(s.g(i, j)));
      }
      unpacked.insert(unpacked.end(), s.codes.begin(), s.codes.end());
      result->groups[g].bits = bits[g];
      result->groups[g].mu = s.mu;
      result->groups[g].iterations = s.iterations;
    }
    RETURN_IF_ERROR(PackGroupCodes(unpacked, &t));
    result->tensor = std::move(t);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeGlvqQuantizer(const engine::QuantizerConfig& config) {
  return std::make_unique<GlvqQuantizer>(config);
}

}  // namespace glvq::cpu
