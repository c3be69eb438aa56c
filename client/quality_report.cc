#include "client/quality_report.h"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "absl/strings/str_format.h"

namespace glvq::cli {
namespace {

// Weight-averaged quality over the quantized tensors, and the worst
// top-weight error.
struct Totals {
  double weights = 0, nmse = 0, proxy = 0, top_error = 0;
  void Add(const ManifestTensor& t) {
    const double w = static_cast<double>(t.accounting.weights);
    const TensorQuality q = t.quality.value_or(TensorQuality{});
    weights += w;
    nmse += w * q.nmse;
    proxy += w * q.proxy_loss;
    top_error = std::max(top_error, q.top_error);
  }
};

// Without calibration the proxy loss is the NMSE (H = I); with it, it is
// what the model feels, and the report leads with it.
bool Calibrated(const Manifest& m) {
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized || !t.quality) continue;
    const TensorQuality& q = *t.quality;
    if (std::abs(q.proxy_loss - q.nmse) > 1e-6 * std::max(q.nmse, 1e-30)) return true;
  }
  return false;
}

}  // namespace

void PrintQualityReport(const PackedModel& model, std::ostream& out) {
  const Manifest& m = model.manifest();
  size_t width = 6;
  for (const ManifestTensor& t : m.tensors) {
    if (t.quantized) width = std::max(width, t.name.size());
  }
  const int w = static_cast<int>(width);
  const bool calibrated = Calibrated(m);
  out << absl::StrFormat("%-*s  %-12s  %8s  %8s  %10s  %10s  %8s  %8s\n", w, "TENSOR", "SHAPE",
                         "PAYLOAD", "TOTAL", calibrated ? "PROXY" : "NMSE",
                         calibrated ? "NMSE" : "PROXY", "SQNR dB", "TOP ERR");
  Totals totals;
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized) continue;
    const TensorQuality q = t.quality.value_or(TensorQuality{});
    out << absl::StrFormat("%-*s  %-12s  %8.4f  %8.4f  %10.4g  %10.4g  %8.2f  %8.3f\n", w,
                           t.name, absl::StrFormat("%dx%d", t.shape[0], t.shape[1]),
                           t.accounting.PayloadPerWeight(), t.accounting.TotalPerWeight(),
                           calibrated ? q.proxy_loss : q.nmse, calibrated ? q.nmse : q.proxy_loss,
                           q.sqnr_db, q.top_error);
    totals.Add(t);
  }
  const double n = std::max(1.0, totals.weights);
  out << absl::StrFormat(
      "total: %d weights quantized, %.4f bits/weight payload, %.4f with side information; "
      "weight-averaged %s; %d bytes passed through\n",
      m.totals.weights, m.totals.PayloadPerWeight(), m.totals.TotalPerWeight(),
      calibrated ? absl::StrFormat("proxy loss %.4g (Hessian-weighted), NMSE %.4g",
                                   totals.proxy / n, totals.nmse / n)
                 : absl::StrFormat("NMSE %.4g (no calibration: proxy loss = NMSE)",
                                   totals.nmse / n),
      m.passthrough_bytes);
  out << absl::StrFormat(
      "largest weights: worst relative error %.3f among each tensor's largest 0.01 %% by |w| "
      "(TOP ERR; near 1 means outliers are crushed or clipped)\n",
      totals.top_error);
}

nlohmann::ordered_json QualityReportJson(const PackedModel& model) {
  const Manifest& m = model.manifest();
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  Totals totals;
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized) continue;
    const TensorQuality q = t.quality.value_or(TensorQuality{});
    tensors.push_back({{"name", t.name},
                       {"shape", t.shape},
                       {"payload_bits_per_weight", t.accounting.PayloadPerWeight()},
                       {"total_bits_per_weight", t.accounting.TotalPerWeight()},
                       {"nmse", q.nmse},
                       {"sqnr_db", q.sqnr_db},
                       {"proxy_loss", q.proxy_loss},
                       {"top_error", q.top_error}});
    totals.Add(t);
  }
  const double n = std::max(1.0, totals.weights);
  return {{"tensors", std::move(tensors)},
          {"totals",
           {{"weights", m.totals.weights},
            {"payload_bits_per_weight", m.totals.PayloadPerWeight()},
            {"total_bits_per_weight", m.totals.TotalPerWeight()},
            {"nmse", totals.nmse / n},
            {"proxy_loss", totals.proxy / n},
            {"calibrated", Calibrated(m)},
            {"top_error", totals.top_error},
            {"passthrough_bytes", m.passthrough_bytes}}}};
}

}  // namespace glvq::cli
