#include "worker/cpu/trellis_quantizer.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "common/base/status_macros.h"
#include "common/packed/trellis_code.h"
#include "common/packed/trellis_tensor.h"
#include "worker/cpu/block_ldlq.h"
#include "worker/cpu/scale_refit.h"
#include "worker/cpu/sdba.h"
#include "worker/cpu/trellis_viterbi.h"
#include "worker/engine/problem.h"
#include "worker/engine/rht.h"

namespace glvq::cpu {
namespace {

using engine::Quantizer;
using Eigen::MatrixXd;

// The window of the trial sweep that measures how feedback moves the
// weights: 16× cheaper than L = 12, and its errors (hence the drift) are
// within a few percent of the final sweep's.
constexpr int kTrialWindow = 8;

// CodeBlock codes whole tiles of the row blocks SweepBlockLdlq hands it,
// so every valid tile_rows (a power of two up to the maximum) must divide
// the block.
static_assert(kBlockLdlqRowsPerTask % kMaxTrellisTileRows == 0);

// Per-row and per-group gains of the rank-one scale model, F32 as stored.
struct Gains {
  std::vector<float> row;    // [rows] RMS of each row (0 for an all-zero row)
  std::vector<float> group;  // [G] ratio(L_g, k_g) · RMS of the group's gain-normalised values
};

// Everything a sweep needs; the codes go to `codes` when it is not null.
struct SweepPlan {
  int window = 12;
  int64_t tile_rows = 1;
  std::vector<int> bits;         // [G]
  std::vector<int64_t> offsets;  // [G+1] as trellis_tensor.h lays the streams out
  const Gains* gains = nullptr;
  std::vector<uint8_t>* codes = nullptr;
};

Gains MeasureGains(const MatrixXd& w, const std::vector<int>& bits, int64_t group_size,
                   int window, int64_t tile_rows) {
  Gains g;
  g.row.resize(static_cast<size_t>(w.rows()));
  for (int64_t r = 0; r < w.rows(); ++r) {
    g.row[r] = static_cast<float>(std::sqrt(w.row(r).squaredNorm() / double(w.cols())));
  }
  g.group.resize(bits.size());
  for (size_t k = 0; k < bits.size(); ++k) {
    const int64_t c0 = int64_t(k) * group_size, width = std::min(group_size, w.cols() - c0);
    double sum = 0;
    int64_t n = 0;
    for (int64_t r = 0; r < w.rows(); ++r) {
      if (g.row[r] == 0) continue;
      sum += w.row(r).segment(c0, width).squaredNorm() / (double(g.row[r]) * g.row[r]);
      n += width;
    }
    const double rms = n > 0 ? std::sqrt(sum / double(n)) : 0.0;
    const int lg = TrellisGroupWindow(window, std::min(tile_rows, w.rows()) * width, bits[k]);
    const double ratio = GaussianScaleRatio(lg, bits[k]);
    // A group of zeros still needs a positive gain; its rows code zeros.
    g.group[k] = rms > 0 ? static_cast<float>(ratio * rms) : 1.0f;
  }
  return g;
}

// Codes the rows of one block (group `g`, columns [c0, c0 + width)), tile
// by tile, and returns W_B − Ŵ_B. `rows` starts at tensor row r0, a
// multiple of kBlockLdlqRowsPerTask and so of plan.tile_rows: its tiles
// are the tensor's.
MatrixXd CodeBlock(const SweepPlan& plan, const MatrixXd& rows, int64_t c0, int64_t width,
                   int64_t r0, int64_t g) {
  const int k = plan.bits[g];
  const int64_t tile = plan.tile_rows;
  const int64_t full_bytes = trellis::StreamBytes(tile * width, k);
  std::vector<float> x(static_cast<size_t>(tile * width)), weight(x.size()), decoded(x.size());
  std::vector<float> scale(static_cast<size_t>(tile));
  std::vector<uint8_t> stream(static_cast<size_t>(full_bytes));
  MatrixXd err(rows.rows(), width);
  std::optional<TrellisEncoder> encoder;  // rebuilt only when the window changes
  for (int64_t i0 = 0; i0 < rows.rows(); i0 += tile) {
    const int64_t n = std::min(tile, rows.rows() - i0), length = n * width;
    const int window = TrellisGroupWindow(plan.window, length, k);
    if (!encoder || encoder->L() != window) encoder.emplace(window, k);
    for (int64_t i = 0; i < n; ++i) scale[i] = plan.gains->row[r0 + i0 + i] * plan.gains->group[g];
    if (n == 1) {
      // One row, one scale: code the weights at that scale directly.
      for (int64_t t = 0; t < width; ++t) x[t] = static_cast<float>(rows(i0, c0 + t));
      encoder->Encode(x.data(), nullptr, width, scale[0], stream.data());
    } else {
      // Rows of a tile have their own scales: code x / s at unit scale with
      // weights s², which is the same squared error Σ (x − s·V)².
      for (int64_t i = 0; i < n; ++i) {
        const float s = scale[i];
        for (int64_t t = 0; t < width; ++t) {
          x[i * width + t] = s > 0 ? static_cast<float>(rows(i0 + i, c0 + t) / s) : 0.0f;
          weight[i * width + t] = s * s;
        }
      }
      encoder->Encode(x.data(), weight.data(), length, 1.0f, stream.data());
    }
    trellis::DecodeSequence(stream.data(), length, window, k, 1.0f, decoded.data());
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t t = 0; t < width; ++t) {
        err(i0 + i, t) = rows(i0 + i, c0 + t) - double(scale[i] * decoded[i * width + t]);
      }
    }
    if (plan.codes != nullptr) {
      const int64_t at = plan.offsets[g] + (r0 + i0) / tile * full_bytes;
      std::copy_n(stream.begin(), trellis::StreamBytes(length, k), plan.codes->begin() + at);
    }
  }
  return err;
}

// The coded values at unit gains (V_L(W_t) of every row and group).
MatrixXd UnitValues(const SweepPlan& plan, const std::vector<uint8_t>& codes, int64_t rows,
                    int64_t cols, int64_t group_size) {
  QuantizedTensor shell;
  shell.method = std::string(kMethodTrellis);
  shell.rows = rows;
  shell.cols = cols;
  shell.group_size = group_size;
  shell.dim = plan.window;
  shell.tile_rows = plan.tile_rows;
  shell.bits.assign(plan.bits.begin(), plan.bits.end());
  shell.offsets = plan.offsets;
  shell.codes = codes;
  shell.row_scale.assign(static_cast<size_t>(rows), 1.0f);
  shell.scale.assign(plan.bits.size(), 1.0f);
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  DecodeTrellis(shell, dense);
  return Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
             dense.data(), rows, cols)
      .cast<double>();
}

class TrellisQuantizer final : public Quantizer {
 public:
  explicit TrellisQuantizer(const quant::QuantizerConfig& c) : Quantizer(engine::WithRht(c)) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const quant::QuantizerConfig& c = config();
    const MatrixXd w = engine::WeightsInDouble(p);
    ASSIGN_OR_RETURN(const std::vector<int> bits,
                     GroupBits(p.name, w, p.hessian, p.num_groups, c));
    const bool feedback = c.ldlq && !p.hessian.is_identity();
    const MatrixXd u = feedback ? p.hessian.InverseCholeskyUpper() : MatrixXd();
    std::vector<uint8_t> stored(bits.begin(), bits.end());
    const int64_t tile = c.trellis.tile_rows;  // divides the row blocks: see CodeBlock
    SweepPlan plan{c.trellis.window, tile, bits,
                   TrellisGroupOffsets(p.w.rows, p.w.cols, c.group_size, stored, tile)};
    Gains gains = MeasureGains(w, bits, c.group_size, c.trellis.window, tile);
    if (feedback) {
      SweepPlan trial = plan;
      trial.window = std::min(kTrialWindow, c.trellis.window);
      trial.gains = &gains;
      MatrixXd drifted(w.rows(), w.cols());
      Sweep(w, trial, &u, &drifted);
      gains = MeasureGains(drifted, bits, c.group_size, c.trellis.window, tile);
    }
    std::vector<uint8_t> codes(static_cast<size_t>(plan.offsets.back()));
    plan.gains = &gains;
    plan.codes = &codes;
    Sweep(w, plan, feedback ? &u : nullptr, nullptr);
    if (c.refit_scales) {
      // The gains were chosen before coding; with the codes fixed, refit
      // them to the loss the codes were searched for.
      const MatrixXd t = UnitValues(plan, codes, w.rows(), w.cols(), c.group_size);
      const MatrixXd h = p.hessian.is_identity() ? MatrixXd() : p.hessian.Matrix();
      RefitRankOneScales(w, t, p.hessian.is_identity() ? nullptr : &h, c.group_size,
                         kScaleRefitRounds, &gains.row, &gains.group);
    }

    QuantizedTensor t = engine::MakeTensorShell(p, c, c.trellis.window);
    t.tile_rows = tile;
    t.bits = std::move(stored);
    t.offsets = std::move(plan.offsets);
    t.codes = std::move(codes);
    t.row_scale = std::move(gains.row);
    t.scale = std::move(gains.group);
    for (int64_t g = 0; g < p.num_groups; ++g) result->groups[g].bits = bits[g];
    result->tensor = std::move(t);
    return absl::OkStatus();
  }

 private:
  // BlockLDLQ over whole groups (or plain coding when u is null).
  void Sweep(const MatrixXd& w, const SweepPlan& plan, const MatrixXd* u, MatrixXd* drifted) const {
    const int64_t gs = config().group_size;
    SweepBlockLdlq(
        w, gs, u, config().threads,
        [&](const MatrixXd& rows, int64_t c0, int64_t width, int64_t r0) {
          return CodeBlock(plan, rows, c0, width, r0, c0 / gs);
        },
        drifted);
  }
};

}  // namespace

std::unique_ptr<engine::Quantizer> MakeTrellisQuantizer(const quant::QuantizerConfig& config) {
  return std::make_unique<TrellisQuantizer>(config);
}

}  // namespace glvq::cpu
