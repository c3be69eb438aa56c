#include "client/quality_report.h"

#include <algorithm>
#include <ostream>

#include "absl/strings/str_format.h"

namespace glvq::cli {
namespace {

// Weight-averaged quality over the quantized tensors.
struct Totals {
  double weights = 0, nmse = 0, proxy = 0;
  void Add(const ManifestTensor& t) {
    const double w = static_cast<double>(t.accounting.weights);
    const TensorQuality q = t.quality.value_or(TensorQuality{});
    weights += w;
    nmse += w * q.nmse;
    proxy += w * q.proxy_loss;
  }
};

}  // namespace

void PrintQualityReport(const PackedModel& model, std::ostream& out) {
  const Manifest& m = model.manifest();
  size_t width = 6;
  for (const ManifestTensor& t : m.tensors) {
    if (t.quantized) width = std::max(width, t.name.size());
  }
  const int w = static_cast<int>(width);
  out << absl::StrFormat("%-*s  %-12s  %8s  %8s  %10s  %8s  %10s\n", w, "TENSOR", "SHAPE",
                         "PAYLOAD", "TOTAL", "NMSE", "SQNR dB", "PROXY");
  Totals totals;
  for (const ManifestTensor& t : m.tensors) {
    if (!t.quantized) continue;
    const TensorQuality q = t.quality.value_or(TensorQuality{});
    out << absl::StrFormat("%-*s  %-12s  %8.4f  %8.4f  %10.4g  %8.2f  %10.4g\n", w, t.name,
                           absl::StrFormat("%dx%d", t.shape[0], t.shape[1]),
                           t.accounting.PayloadPerWeight(), t.accounting.TotalPerWeight(), q.nmse,
                           q.sqnr_db, q.proxy_loss);
    totals.Add(t);
  }
  const double n = std::max(1.0, totals.weights);
  out << absl::StrFormat(
      "total: %d weights quantized, %.4f bits/weight payload, %.4f with side information; "
      "NMSE %.4g, proxy loss %.4g (weight-averaged); %d bytes passed through\n",
      m.totals.weights, m.totals.PayloadPerWeight(), m.totals.TotalPerWeight(), totals.nmse / n,
      totals.proxy / n, m.passthrough_bytes);
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
                       {"proxy_loss", q.proxy_loss}});
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
            {"passthrough_bytes", m.passthrough_bytes}}}};
}

}  // namespace glvq::cli
