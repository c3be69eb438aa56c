#include "worker/cpu/pvq_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/pvq.h"
#include "common/packed/pvq_tensor.h"
#include "worker/cpu/block_ldlq.h"
#include "worker/cpu/pvq_gain.h"
#include "worker/cpu/pvq_projection.h"
#include "worker/cpu/pvq_rate.h"
#include "worker/engine/problem.h"
#include "worker/engine/rht.h"

namespace glvq::cpu {
namespace {

using engine::Quantizer;
using Eigen::MatrixXd;

std::vector<float> RowNorms(const MatrixXd& w) {
  std::vector<float> norms(static_cast<size_t>(w.rows()));
  for (int64_t r = 0; r < w.rows(); ++r) norms[r] = static_cast<float>(w.row(r).norm());
  return norms;
}

class PvqQuantizer final : public Quantizer {
 public:
  PvqQuantizer(const quant::QuantizerConfig& c, pvq::Rate rate, pvq::Enumeration enumeration)
      : Quantizer(engine::WithRht(c)), rate_(rate), enumeration_(std::move(enumeration)) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const bool feedback = !p.hessian.is_identity();
    const MatrixXd u = feedback ? p.hessian.InverseCholeskyUpper() : MatrixXd();
    const MatrixXd w = Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                                      Eigen::RowMajor>>(p.w.data, p.w.rows,
                                                                        p.w.cols)
                           .cast<double>();
    Plan plan;
    plan.whole = {rate_.pulses, &enumeration_, Levels(Dim(), p.w.cols)};
    // The group size is a multiple of D, so only a row's last vector can be
    // short; it gets its own pyramid and gain levels.
    const int short_dim = static_cast<int>(p.w.cols % Dim());
    std::optional<pvq::Enumeration> short_enumeration;
    if (short_dim > 0) {
      const int pulses = pvq::ShortVectorPulses(short_dim, config().bits, rate_.gain_bits);
      ASSIGN_OR_RETURN(short_enumeration, pvq::Enumeration::Create(short_dim, pulses));
      plan.part = {pulses, &*short_enumeration, Levels(short_dim, p.w.cols)};
    }
    plan.norms = RowNorms(w);
    PvqCodes codes = EmptyCodes(p, plan);
    if (feedback) {
      // BlockLDLQ moves later columns by the earlier blocks' errors: a trial
      // sweep records the rows really coded, whose norms are then stored.
      MatrixXd drifted(p.w.rows, p.w.cols);
      Sweep(plan, w, &u, &codes, &drifted);
      plan.norms = RowNorms(drifted);
    }
    Sweep(plan, w, feedback ? &u : nullptr, &codes, nullptr);
    return Assemble(p, std::move(plan), codes, result);
  }

 private:
  // How vectors of one length are coded.
  struct VectorCoder {
    int pulses = 0;
    const pvq::Enumeration* enumeration = nullptr;
    std::vector<float> levels;  // gain levels, increasing
  };
  struct Plan {
    VectorCoder whole;         // D-vectors
    VectorCoder part;          // a row's short last vector, if D does not divide it
    std::vector<float> norms;  // row norms
  };

  int64_t Dim() const { return config().dim; }

  // Gain levels for vectors of `dim` coordinates in rows of n, as stored (F32).
  std::vector<float> Levels(int64_t dim, int64_t n) const {
    const std::vector<double> levels = PvqGainLevels(
        config().pvq.gain_levels, static_cast<int>(dim), n, 1 << rate_.gain_bits);
    return std::vector<float>(levels.begin(), levels.end());
  }

  PvqCodes EmptyCodes(const Problem& p, const Plan& plan) const {
    const int64_t records = p.w.rows * PvqVectorsPerRow(p.w.cols, Dim());
    PvqCodes codes;
    codes.words = plan.part.enumeration == nullptr
                      ? enumeration_.words()
                      : std::max(enumeration_.words(), plan.part.enumeration->words());
    codes.indices.assign(static_cast<size_t>(records * codes.words), 0);
    codes.gain_codes.assign(static_cast<size_t>(records), 0);
    return codes;
  }

  // Record of row r's vector starting at column c0: groups hold whole
  // D-vectors (the group size is a multiple of D), so every group before
  // c0's has group_size / D vectors per row.
  size_t Record(int64_t rows, int64_t cols, int64_t r, int64_t c0) const {
    const int64_t gs = config().group_size, g = c0 / gs;
    const int64_t per_row = PvqVectorsPerRow(std::min(gs, cols - g * gs), Dim());
    return static_cast<size_t>(rows * g * (gs / Dim()) + r * per_row + (c0 - g * gs) / Dim());
  }

  void Sweep(const Plan& plan, const MatrixXd& w, const MatrixXd* u, PvqCodes* codes,
             MatrixXd* drifted) const {
    SweepBlockLdlq(
        w, Dim(), u, config().threads,
        [&](const MatrixXd& rows, int64_t c0, int64_t k, int64_t r0) {
          return CodeBlock(plan, rows, c0, k, r0, w.rows(), codes);
        },
        drifted);
  }

  // Codes the k (≤ D) columns from c0 of every row of `w` (rows r0 … of a
  // tensor of `total_rows`) and returns the errors W_B − Ŵ_B (rows × k).
  MatrixXd CodeBlock(const Plan& plan, const MatrixXd& w, int64_t c0, int64_t k, int64_t r0,
                     int64_t total_rows, PvqCodes* codes) const {
    const VectorCoder& coder = k == Dim() ? plan.whole : plan.part;
    MatrixXd err(w.rows(), k);
    std::vector<double> x(static_cast<size_t>(k)), w_hat(static_cast<size_t>(k));
    std::vector<int32_t> y(static_cast<size_t>(k));
    for (int64_t r = 0; r < w.rows(); ++r) {
      for (int64_t i = 0; i < k; ++i) x[i] = w(r, c0 + i);
      const size_t rec = Record(total_rows, w.cols(), r0 + r, c0);
      codes->gain_codes[rec] = static_cast<uint8_t>(
          CodePvqVector(x, plan.norms[r0 + r], coder.pulses, coder.levels, y, w_hat));
      coder.enumeration->Encode(y.data(),
                                &codes->indices[rec * static_cast<size_t>(codes->words)]);
      for (int64_t i = 0; i < k; ++i) err(r, i) = x[i] - w_hat[i];
    }
    return err;
  }

  absl::Status Assemble(const Problem& p, Plan plan, const PvqCodes& codes,
                        quant::QuantizeResult* result) const {
    QuantizedTensor t = engine::MakeTensorShell(p, config(), Dim());
    for (int64_t g = 0; g < p.num_groups; ++g) {
      const int64_t width = t.GroupWidth(g);
      t.pulses.push_back(width >= Dim() ? plan.whole.pulses : 0);
      t.pulses.push_back(width % Dim() != 0 ? plan.part.pulses : 0);
    }
    t.gains = std::move(plan.whole.levels);
    t.gains.insert(t.gains.end(), plan.part.levels.begin(), plan.part.levels.end());
    t.norms = std::move(plan.norms);
    RETURN_IF_ERROR(PackPvqCodes(codes, &t));
    const int bits = static_cast<int>(std::lround(rate_.record_bits() / static_cast<double>(Dim())));
    for (quant::GroupStats& g : result->groups) g.bits = bits;
    result->tensor = std::move(t);
    return absl::OkStatus();
  }

  pvq::Rate rate_;
  pvq::Enumeration enumeration_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakePvqQuantizer(
    const quant::QuantizerConfig& config) {
  ASSIGN_OR_RETURN(const pvq::Rate rate, ChoosePvqRate(config));
  ASSIGN_OR_RETURN(pvq::Enumeration e, pvq::Enumeration::Create(config.dim, rate.pulses));
  return std::unique_ptr<engine::Quantizer>(
      std::make_unique<PvqQuantizer>(config, rate, std::move(e)));
}

}  // namespace glvq::cpu
