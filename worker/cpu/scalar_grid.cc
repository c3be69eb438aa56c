#include "worker/cpu/scalar_grid.h"

#include <algorithm>

#include "common/base/status_macros.h"

namespace glvq::cpu {

using quant::RtnVariant;

ScalarGrid FitScalarGrid(std::span<const double> values, std::span<const double> importance,
                         int bits, RtnVariant variant) {
  const double* v = values.data();
  const double* imp = importance.data();
  return FitScalarGridOf([v](int64_t i) { return v[i]; }, [imp](int64_t i) { return imp[i]; },
                         static_cast<int64_t>(values.size()), bits, variant == RtnVariant::kMinMax);
}

ScalarQuantization::ScalarQuantization(int64_t num_rows, int64_t num_cols,
                                       int64_t columns_per_group)
    : rows(num_rows),
      cols(num_cols),
      group_size(columns_per_group),
      num_groups((num_cols + columns_per_group - 1) / columns_per_group),
      grids(static_cast<size_t>(num_groups * num_rows)),
      codes(static_cast<size_t>(num_rows * num_cols)) {}

int64_t ScalarQuantization::GroupWidth(int64_t g) const {
  return std::min(group_size, cols - g * group_size);
}

absl::Status AssembleRtnTensor(const engine::Quantizer::Problem& p,
                               const quant::QuantizerConfig& config, int bits,
                               const ScalarQuantization& q, quant::QuantizeResult* result) {
  QuantizedTensor t = engine::MakeTensorShell(p, config, 1);
  t.bits.assign(static_cast<size_t>(q.num_groups), static_cast<uint8_t>(bits));
  t.scale.reserve(q.grids.size());
  t.zero.reserve(q.grids.size());
  for (const ScalarGrid& grid : q.grids) {
    t.scale.push_back(grid.scale);
    t.zero.push_back(grid.zero);
  }
  RETURN_IF_ERROR(PackGroupCodes(q.codes, &t));
  for (quant::GroupStats& g : result->groups) g.bits = bits;
  result->tensor = std::move(t);
  return absl::OkStatus();
}

}  // namespace glvq::cpu
