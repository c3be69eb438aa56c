#include "worker/engine/quantizer.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/base/cpu_time.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "worker/engine/problem.h"
#include "worker/engine/rht.h"

namespace glvq::engine {
namespace {

using quant::kMaxSqnrDb;

absl::Status CheckWeights(std::string_view name, MatrixView w) {
  if (w.rows < 1 || w.cols < 1 || w.data == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(name), ": weight must be a non-empty 2-D matrix"));
  }
  const int64_t n = w.rows * w.cols;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(w.data[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(name), ": weight has a non-finite value (", w.data[i], ") at row ",
          i / w.cols, ", column ", i % w.cols));
    }
  }
  return absl::OkStatus();
}

TensorQuality Measure(const Quantizer::Problem& p, const std::vector<float>& what) {
  const int64_t n = p.w.rows * p.w.cols;
  std::vector<float> delta(static_cast<size_t>(n));
  double err = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    delta[i] = p.w.data[i] - what[i];
    err += double(delta[i]) * delta[i];
    ref += double(p.w.data[i]) * p.w.data[i];
  }
  TensorQuality q;
  q.nmse = ref > 0 ? err / ref : 0.0;
  q.sqnr_db = q.nmse > 0 ? std::min(kMaxSqnrDb, -10.0 * std::log10(q.nmse)) : kMaxSqnrDb;
  const double href = p.hessian.WeightedSquaredNorm(p.w.data, p.w.rows);
  q.proxy_loss = href > 0 ? p.hessian.WeightedSquaredNorm(delta.data(), p.w.rows) / href : 0.0;
  q.top_error = quant::TopWeightError(std::span<const float>(p.w.data, static_cast<size_t>(n)), what);
  return q;
}

void MeasureGroups(const Quantizer::Problem& p, int64_t group_size, const std::vector<float>& what,
                   std::vector<quant::GroupStats>* groups) {
  for (int64_t g = 0; g < p.num_groups; ++g) {
    const int64_t c0 = g * group_size;
    const int64_t w = std::min(group_size, p.w.cols - c0);
    Eigen::MatrixXd orig(p.w.rows, w), diff(p.w.rows, w);
    for (int64_t r = 0; r < p.w.rows; ++r) {
      for (int64_t c = 0; c < w; ++c) {
        const int64_t i = r * p.w.cols + c0 + c;
        orig(r, c) = p.w.data[i];
        diff(r, c) = double(p.w.data[i]) - what[i];
      }
    }
    const Eigen::MatrixXd h = p.hessian.Block(c0, w);
    const double ref = (orig * h).cwiseProduct(orig).sum();
    (*groups)[g].proxy_loss = ref > 0 ? (diff * h).cwiseProduct(diff).sum() / ref : 0.0;
  }
}

}  // namespace

QuantizedTensor MakeTensorShell(const Quantizer::Problem& p, const quant::QuantizerConfig& c,
                                int64_t dim) {
  QuantizedTensor t;
  t.name = p.name;
  t.method = std::string(quant::FormatMethod(c.method));
  t.rows = p.w.rows;
  t.cols = p.w.cols;
  t.group_size = c.group_size;
  t.dim = dim;
  return t;
}

// Every method gets RHT the same way: it quantizes W̃ with H̃ (same shape,
// same groups) and the tensor records the seeds, so that DequantizeRef
// returns Ŵ in the original basis; quality is then measured there.
absl::Status Quantizer::QuantizeTransformed(const Problem& p, quant::QuantizeResult* result) const {
  const double start = ThreadCpuSeconds();
  const RhtSeeds seeds = DeriveRhtSeeds(p.seed);
  const std::vector<float> w = RhtTransformWeight(p.w, seeds);
  auto h = RhtTransformHessian(p.hessian, seeds.col);
  // Quantize counts this stage's time as search; move it to transform.
  const double transform = ThreadCpuSeconds() - start;
  result->seconds.transform += transform;
  result->seconds.search -= transform;
  if (!h.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(p.name, ": transformed Hessian: ",
                                                   h.status().message()));
  }
  const Problem transformed{p.name, {w.data(), p.w.rows, p.w.cols}, *std::move(h), p.seed,
                            p.num_groups};
  RETURN_IF_ERROR(QuantizeImpl(transformed, result));
  result->tensor.rht_seed = RhtSeedComponent(seeds);
  return absl::OkStatus();
}

absl::StatusOr<quant::QuantizeResult> Quantizer::Quantize(std::string_view name, MatrixView w,
                                                          const HessianView* hessian) const {
  quant::QuantizeResult result;
  quant::StageSeconds& t = result.seconds;
  double mark = ThreadCpuSeconds();
  auto lap = [&mark](double& stage) {
    const double now = ThreadCpuSeconds();
    stage += now - mark;
    mark = now;
  };
  RETURN_IF_ERROR(CheckWeights(name, w));
  Problem p{std::string(name), w, PreparedHessian::Identity(w.cols), 0, 0};
  if (hessian != nullptr) {
    auto h = PreparedHessian::FromData(hessian->data, hessian->n, w.cols, config_.damp,
                                      hessian->mean_diagonal);
    if (!h.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(p.name, ": ", h.status().message()));
    }
    p.hessian = *std::move(h);
  }
  p.seed = DeriveSeed(config_.seed, Fnv1a64(p.name.data(), p.name.size()));
  p.num_groups = (w.cols + config_.group_size - 1) / config_.group_size;
  result.groups.resize(static_cast<size_t>(p.num_groups));
  lap(t.prepare);
  if (config_.rht) {
    RETURN_IF_ERROR(QuantizeTransformed(p, &result));  // laps transform and search itself
  } else {
    RETURN_IF_ERROR(QuantizeImpl(p, &result));
  }
  lap(t.search);
  RETURN_IF_ERROR(ValidateQuantizedTensor(result.tensor));
  result.dequantized.resize(static_cast<size_t>(w.rows * w.cols));
  RETURN_IF_ERROR(DequantizeRef(result.tensor, result.dequantized));
  lap(t.decode);
  result.tensor.quality = Measure(p, result.dequantized);
  MeasureGroups(p, config_.group_size, result.dequantized, &result.groups);
  result.accounting = ComputeAccounting(result.tensor);
  lap(t.measure);
  return result;
}

}  // namespace glvq::engine
