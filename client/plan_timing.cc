#include "client/plan_timing.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/cpu_time.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/jobspec/quantizer_spec.h"
#include "worker/engine/quantizer.h"

namespace glvq::cli {
namespace {

constexpr uint64_t kSeed = 0x706c616e;  // "plan"
constexpr int64_t kSliceWeights = 65536;
constexpr int kRepeats = 2;

// seconds(rows) = fixed + per_row · rows, fitted to the fastest repeats
// (the least disturbed by other work), and how much slower the slowest
// repeat was (≥ 1): the spread the range shows.
struct Fit {
  double fixed = 0;
  double per_row = 0;
  double spread = 1;
};

// A synthetic SPD n × n Hessian: a positive diagonal plus a few rank-one
// terms, cheap to build for any n.
std::vector<double> SyntheticHessian(int64_t n, Rng& rng) {
  std::vector<double> h(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) h[i * n + i] = 1.0 + std::abs(rng.Normal());
  for (int k = 0; k < 4; ++k) {
    std::vector<double> v(static_cast<size_t>(n));
    for (double& x : v) x = rng.Normal() / std::sqrt(static_cast<double>(n));
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) h[i * n + j] += v[i] * v[j];
    }
  }
  return h;
}

// CPU seconds of quantizing `rows` × `width` Gaussian weights, fastest and
// slowest of kRepeats.
absl::StatusOr<std::pair<double, double>> TimeSlice(const engine::Quantizer& q, int64_t rows,
                                                    int64_t width, const std::vector<double>* h) {
  Rng rng(kSeed + static_cast<uint64_t>(rows));
  std::vector<float> w(static_cast<size_t>(rows * width));
  for (float& x : w) x = static_cast<float>(0.02 * rng.Normal());
  const engine::HessianView hv{h ? h->data() : nullptr, width, 0};
  double fast = INFINITY, slow = 0;
  for (int r = 0; r < kRepeats; ++r) {
    const double start = ThreadCpuSeconds();
    RETURN_IF_ERROR(q.Quantize("plan.timing", {w.data(), rows, width}, h ? &hv : nullptr).status());
    const double t = ThreadCpuSeconds() - start;
    fast = std::min(fast, t);
    slow = std::max(slow, t);
  }
  return std::make_pair(fast, slow);
}

absl::StatusOr<Fit> Measure(const v1::QuantizerSpec& spec, int64_t width, bool calibrated) {
  ASSIGN_OR_RETURN(quant::QuantizerConfig config, jobspec::ToQuantizerConfig(spec));
  config.threads = 1;  // this thread's clock must see all the work
  ASSIGN_OR_RETURN(const auto q, engine::MakeQuantizer(config));
  Rng rng(kSeed);
  std::vector<double> h;
  if (calibrated) h = SyntheticHessian(width, rng);
  const int64_t r1 = std::clamp<int64_t>(kSliceWeights / width, 8, 256);
  ASSIGN_OR_RETURN(const auto t1, TimeSlice(*q, r1, width, calibrated ? &h : nullptr));
  ASSIGN_OR_RETURN(const auto t2, TimeSlice(*q, 2 * r1, width, calibrated ? &h : nullptr));
  Fit fit;
  // The extra r1 rows cost the difference; the rest of the first slice is
  // the per-task part (Hessian preparation and factors, transforms). Noise
  // can make the larger slice look cheaper: then it is all per row.
  const double diff = t2.first - t1.first;
  fit.per_row = diff > 0 ? diff / static_cast<double>(r1) : t2.first / static_cast<double>(2 * r1);
  fit.fixed = std::max(t1.first - fit.per_row * static_cast<double>(r1), 0.0);
  fit.spread = std::max({1.0, t1.second / std::max(t1.first, 1e-9),
                         t2.second / std::max(t2.first, 1e-9)});
  return fit;
}

}  // namespace

absl::StatusOr<MeasuredTime> MeasurePlanTime(std::span<const v1::Task> tasks) {
  const double start = ThreadCpuSeconds();
  // Keyed by the serialized quantizer spec too: overrides give tensors
  // different settings.
  std::map<std::tuple<std::string, int64_t, bool>, Fit> fits;
  MeasuredTime out;
  for (const v1::Task& task : tasks) {
    const int64_t rows = task.source().shape_size() > 0 ? task.source().shape(0) : 0;
    if (rows <= 0) continue;
    const int64_t width = static_cast<int64_t>(task.weights()) / rows;
    const bool calibrated = task.has_hessian() && !task.hessian().file().empty();
    const int64_t measured = std::min(width, kMaxMeasuredWidth);
    auto key = std::make_tuple(task.quantizer().SerializeAsString(), measured, calibrated);
    auto it = fits.find(key);
    if (it == fits.end()) {
      ASSIGN_OR_RETURN(Fit fit, Measure(task.quantizer(), measured, calibrated));
      it = fits.emplace(std::move(key), fit).first;
    }
    const Fit& f = it->second;
    // Beyond the cap: the same cost per weight (a lower bound).
    const double scale = static_cast<double>(width) / static_cast<double>(measured);
    const double seconds = scale * (f.fixed + f.per_row * static_cast<double>(rows));
    out.low_seconds += seconds;
    out.high_seconds += seconds * f.spread;
  }
  out.measuring_seconds = ThreadCpuSeconds() - start;
  return out;
}

}  // namespace glvq::cli
