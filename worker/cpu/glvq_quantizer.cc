#include "worker/cpu/glvq_quantizer.h"

#include <cmath>

#include "common/base/status_macros.h"
#include "worker/cpu/companding.h"
#include "worker/cpu/glvq_generator.h"
#include "worker/cpu/glvq_group.h"
#include "worker/cpu/sdba.h"
#include "worker/cpu/sphere_decoder.h"
#include "common/base/parallel.h"
#include "worker/engine/problem.h"

namespace glvq::cpu {
namespace {

using engine::Quantizer;
using Eigen::MatrixXd;

// Re-codes group columns [c0, c0 + width) d columns at a time with BlockLDLQ
// feedback: each block is rounded against weights that already absorbed the
// earlier blocks' errors, then its own error moves onto every later column,
// W_R −= (W_B − Ŵ_B) U_BB⁻¹ U_BR. The group's learned G, µ and s stay.
void RecodeWithBlockFeedback(int64_t c0, int64_t width, int64_t d, int bits, bool exact,
                             const MatrixXd& u, MatrixXd* w, GroupSolution* s) {
  const double half = std::ldexp(1.0, bits - 1);
  const int64_t cols = w->cols();
  for (int64_t b0 = 0; b0 < width; b0 += d) {
    const int64_t k = std::min(d, width - b0), col = c0 + b0, rest = cols - col - k;
    const MatrixXd gk = s->g.topLeftCorner(k, k);
    const MatrixXd y = (w->middleCols(col, k) / double(s->scale)).unaryExpr([&](double v) {
      return Compand(v, s->mu);
    });
    MatrixXd z = (y * gk.inverse().transpose()).unaryExpr([&](double v) {
      if (!std::isfinite(v)) v = 0;
      return std::clamp(std::floor(v), -half, half - 1) + 0.5;
    });
    if (exact) {
      const BoxedSphereDecoder decoder(gk, bits);
      for (int64_t r = 0; r < z.rows(); ++r) {
        Eigen::VectorXd zr = z.row(r).transpose();
        decoder.Solve(y.row(r).transpose(), &zr);
        z.row(r) = zr.transpose();
      }
    }
    for (int64_t r = 0; r < z.rows(); ++r) {
      for (int64_t i = 0; i < k; ++i) {
        s->codes[r * width + b0 + i] = static_cast<uint8_t>(z(r, i) - 0.5 + half);
      }
    }
    if (rest == 0) continue;
    const MatrixXd what = (z * gk.transpose()).unaryExpr([&](double v) {
      return double(s->scale) * Expand(v, s->mu);
    });
    const MatrixXd err = w->middleCols(col, k) - what;
    const MatrixXd scaled =
        u.block(col, col, k, k).triangularView<Eigen::Upper>().transpose().solve(err.transpose()).transpose();
    w->rightCols(rest).noalias() -= scaled * u.block(col, col + k, k, rest);
  }
}

// Per-row gains (GlvqOptions.row_gain): each row's RMS as stored (F32); 1
// for a row whose RMS is zero or does not survive the rounding to F32.
std::vector<float> RowGains(const MatrixXd& w) {
  std::vector<float> gains(static_cast<size_t>(w.rows()), 1.0f);
  for (int64_t r = 0; r < w.rows(); ++r) {
    const auto rms = static_cast<float>(std::sqrt(w.row(r).squaredNorm() / double(w.cols())));
    if (rms > 0 && std::isfinite(rms)) gains[r] = rms;
  }
  return gains;
}

class GlvqQuantizer final : public Quantizer {
 public:
  explicit GlvqQuantizer(const quant::QuantizerConfig& c) : Quantizer(c) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const quant::QuantizerConfig& c = config();
    MatrixXd w = engine::WeightsInDouble(p);
    ASSIGN_OR_RETURN(const std::vector<int> bits,
                     GroupBits(p.name, w, p.hessian, p.num_groups, c));
    // Groups are learned on gain-normalised rows, each row's error weighted
    // by its gain², so the loss is still the true one. Feedback (ldlq) is
    // row-wise linear and works on the normalised rows alike.
    std::vector<float> gains;
    Eigen::VectorXd row_weight;
    if (c.glvq.row_gain) {
      gains = RowGains(w);
      row_weight.resize(w.rows());
      for (int64_t r = 0; r < w.rows(); ++r) {
        w.row(r) /= double(gains[r]);
        row_weight[r] = double(gains[r]) * double(gains[r]);
      }
    }
    const Eigen::VectorXd* weights = gains.empty() ? nullptr : &row_weight;
    std::vector<GroupSolution> solutions(static_cast<size_t>(p.num_groups));
    auto solve = [&](int64_t g, const MatrixXd& source, const MatrixXd& hg) {
      const int64_t c0 = g * c.group_size;
      const MatrixXd wg = source.middleCols(c0, hg.cols());
      solutions[g] =
          SolveGlvqGroup({&wg, &hg, p.hessian.is_identity(), weights, bits[g], c.dim, c.glvq});
    };
    if (c.ldlq && !p.hessian.is_identity()) {
      SolveWithFeedback(p, bits, &w, solve, &solutions);
    } else {
      ParallelFor(p.num_groups, c.threads, [&](int64_t g) {
        const int64_t c0 = g * c.group_size;
        solve(g, w, p.hessian.Block(c0, std::min<int64_t>(c.group_size, p.w.cols - c0)));
      });
    }
    RETURN_IF_ERROR(Assemble(p, bits, solutions, result));
    result->tensor.row_scale = std::move(gains);
    return absl::OkStatus();
  }

 private:
  // BlockLDLQ (QuIP#-style, d-column blocks) inside and across groups.
  // Each group's G, µ and s are learned on weights that already absorbed
  // the earlier groups' errors, under (U_BBᵀ U_BB)⁻¹ — the Schur complement
  // of H over the columns not yet quantized, i.e. what the group's error
  // costs once later columns compensate; then its codes are re-rounded
  // block by block with feedback.
  template <typename Solve>
  void SolveWithFeedback(const Problem& p, const std::vector<int>& bits, MatrixXd* w,
                         Solve& solve, std::vector<GroupSolution>* solutions) const {
    const int64_t gs = config().group_size;
    const MatrixXd u = p.hessian.InverseCholeskyUpper();
    for (int64_t g = 0; g < p.num_groups; ++g) {
      const int64_t c0 = g * gs, width = std::min(gs, p.w.cols - c0);
      const auto u_bb = u.block(c0, c0, width, width).triangularView<Eigen::Upper>();
      const MatrixXd u_inv = u_bb.solve(MatrixXd::Identity(width, width));
      const MatrixXd h_eff = u_inv * u_inv.transpose();
      const MatrixXd h_sym = 0.5 * (h_eff + h_eff.transpose());
      solve(g, *w, h_sym);
      // Feedback moves the group's own later columns too, possibly past the
      // range s and G were fitted to: a trial pass records the weights each
      // block is actually rounded against, and the group is re-learned on them.
      MatrixXd trial = *w;
      GroupSolution scratch = (*solutions)[g];
      RecodeWithBlockFeedback(c0, width, config().dim, bits[g], false, u, &trial, &scratch);
      solve(g, trial, h_sym);
      RecodeWithBlockFeedback(c0, width, config().dim, bits[g], config().glvq.exact_search, u, w,
                              &(*solutions)[g]);
    }
  }

  absl::Status Assemble(const Problem& p, const std::vector<int>& bits,
                        const std::vector<GroupSolution>& solutions,
                        quant::QuantizeResult* result) const {
    QuantizedTensor t = engine::MakeTensorShell(p, config(), config().dim);
    std::vector<uint8_t> unpacked;
    unpacked.reserve(static_cast<size_t>(p.w.rows * p.w.cols));
    for (int64_t g = 0; g < p.num_groups; ++g) {
      const GroupSolution& s = solutions[g];
      AppendGroupSideInfo(bits[g], s.scale, s.mu, s.g, s.iterations, &t, &result->groups[g]);
      unpacked.insert(unpacked.end(), s.codes.begin(), s.codes.end());
    }
    RETURN_IF_ERROR(PackGroupCodes(unpacked, &t));
    result->tensor = std::move(t);
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeGlvqQuantizer(const quant::QuantizerConfig& config) {
  return std::make_unique<GlvqQuantizer>(config);
}

}  // namespace glvq::cpu
