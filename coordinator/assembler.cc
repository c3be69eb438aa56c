#include "coordinator/assembler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace glvq::coordinator {
namespace {

template <typename T>
void Append(const std::vector<T>& from, std::vector<T>* to) {
  to->insert(to->end(), from.begin(), from.end());
}

// Everything but the arrays must be equal across the parts of a tensor, and
// each part must start where the previous one ended.
absl::Status CheckParts(const std::vector<TensorPart>& parts, int64_t cols) {
  const QuantizedTensor& head = parts.front().tensor;
  int64_t next_group = 0, covered = 0;
  for (const TensorPart& p : parts) {
    const QuantizedTensor& t = p.tensor;
    if (t.name != head.name || t.method != head.method || t.source_dtype != head.source_dtype ||
        t.rows != head.rows || t.group_size != head.group_size || t.dim != head.dim ||
        t.tile_rows != head.tile_rows) {
      return absl::InvalidArgumentError(
          absl::StrCat(head.name, ": the ranges disagree on name, method, dtype or shape"));
    }
    const bool whole_tensor_only = !t.rht_seed.empty() || !t.row_scale.empty();
    if (int64_t{p.first_group} != next_group || (whole_tensor_only && parts.size() > 1)) {
      return absl::InvalidArgumentError(absl::StrCat(
          head.name, ": range starting at group ", p.first_group, " does not continue at group ",
          next_group, " (or carries an RHT seed or row gains, which a split tensor cannot)"));
    }
    // Only the last range may end on a narrower group.
    if (&p != &parts.back() && t.cols % t.group_size != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          head.name, ": range at group ", p.first_group, " does not end on a group boundary"));
    }
    next_group += t.NumGroups();
    covered += t.cols;
  }
  if (covered != cols) {
    return absl::InvalidArgumentError(
        absl::StrCat(head.name, ": the ranges cover ", covered, " of ", cols, " columns"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<QuantizedTensor> AssembleTensor(std::vector<TensorPart> parts, int64_t cols) {
  if (parts.empty()) return absl::InvalidArgumentError("a tensor needs at least one range");
  std::sort(parts.begin(), parts.end(),
            [](const TensorPart& a, const TensorPart& b) { return a.first_group < b.first_group; });
  RETURN_IF_ERROR(CheckParts(parts, cols));
  if (parts.size() == 1) {
    RETURN_IF_ERROR(ValidateQuantizedTensor(parts.front().tensor));
    return std::move(parts.front().tensor);
  }
  QuantizedTensor out = parts.front().tensor;
  out.cols = cols;
  out.bits.clear();
  out.offsets.assign(1, 0);
  out.codes.clear();
  out.generators.clear();
  out.mu.clear();
  out.scale.clear();
  out.zero.clear();
  quant::QualitySums sums;
  for (const TensorPart& p : parts) {
    const QuantizedTensor& t = p.tensor;
    const int64_t base = static_cast<int64_t>(out.codes.size());
    for (size_t g = 1; g < t.offsets.size(); ++g) out.offsets.push_back(base + t.offsets[g]);
    Append(t.bits, &out.bits);
    Append(t.codes, &out.codes);
    Append(t.generators, &out.generators);
    Append(t.mu, &out.mu);
    Append(t.scale, &out.scale);
    Append(t.zero, &out.zero);
    sums += p.sums;
  }
  out.quality = sums.Quality();
  RETURN_IF_ERROR(ValidateQuantizedTensor(out));
  return out;
}

}  // namespace glvq::coordinator
