#include "coordinator/planner.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/glob.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/jobspec/byte_quantity.h"
#include "common/jobspec/quantizer_spec.h"
#include "coordinator/estimates.h"
#include "common/quant/config.h"

namespace glvq::coordinator {
namespace {

struct GroupSpan {
  uint32_t first = 0;
  uint32_t count = 0;
};

// The geometry of one tensor under the job's group size.
struct Geometry {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t group_size = 0;
  int64_t groups = 0;

  TaskShape Shape(GroupSpan span) const {
    const int64_t begin = int64_t{span.first} * group_size;
    const int64_t end = std::min(cols, int64_t{span.first + span.count} * group_size);
    return {rows, end - begin, int64_t{span.count}};
  }
};

// Why a method needs a tensor in one piece, for RESOURCE_EXHAUSTED messages.
std::string WholeTensorReason(const quant::QuantizerConfig& c) {
  if (c.rht) return "rht transforms all columns of a tensor together";
  if (c.method == quant::Method::kGptq) return "gptq feeds each group's error into the next";
  if (c.method == quant::Method::kE8p)
    return "e8p (BlockLDLQ) feeds each group's error into the next";
  if (c.method == quant::Method::kPvq)
    return "pvq (RHT, row norms, BlockLDLQ) couples all groups of a tensor";
  if (c.method == quant::Method::kTrellis)
    return "trellis (RHT, row gains, BlockLDLQ) couples all groups of a tensor";
  if (c.ldlq) return "ldlq feeds each group's error into the next";
  if (c.method == quant::Method::kGlvq && c.glvq.row_gain) {
    return "row gains are measured over all columns of a row";
  }
  return "sdba allocates bits over all groups of a tensor";
}

// The fewest balanced group ranges whose estimates fit `budget` (0: none).
absl::StatusOr<std::vector<GroupSpan>> SplitGroups(const quant::QuantizerConfig& config,
                                                   const std::string& name, const Geometry& g,
                                                   uint64_t budget, bool calibrated) {
  const auto total = static_cast<uint32_t>(g.groups);
  auto memory = [&](uint32_t first, uint32_t count) {
    return EstimateTaskMemory(config, g.Shape({first, count}), calibrated);
  };
  const uint64_t whole = memory(0, total);
  if (budget == 0 || whole <= budget) return std::vector<GroupSpan>{{0, total}};
  if (!CanSplitTensor(config)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tensor '", name, "' needs ", whole, " bytes (", jobspec::FormatBytes(whole),
        ") in one task, over the task memory budget of ", budget, " bytes (",
        jobspec::FormatBytes(budget), "), and cannot be split: ", WholeTensorReason(config),
        ". Raise spec.workers.maxTaskMemoryBytes or use a method that quantizes groups "
        "independently (glvq without ldlq/sdba/rht/rowGain, rtn)"));
  }
  if (const uint64_t one = memory(0, 1); one > budget) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tensor '", name, "': a single column group needs ", one, " bytes (",
                     jobspec::FormatBytes(one), "), over the task memory budget of ", budget,
                     " bytes (", jobspec::FormatBytes(budget), ")"));
  }
  // The estimate grows with the group count: find the most groups that fit
  // (measured on full-width groups, so every range of that many fits).
  uint32_t lo = 1, hi = total;
  while (lo < hi) {
    const uint32_t mid = lo + (hi - lo + 1) / 2;
    if (memory(0, mid) <= budget) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const uint32_t tasks = (total + lo - 1) / lo;
  const uint32_t base = total / tasks, extra = total % tasks;
  std::vector<GroupSpan> spans;
  uint32_t first = 0;
  for (uint32_t i = 0; i < tasks; ++i) {
    const uint32_t count = base + (i < extra ? 1 : 0);
    spans.push_back({first, count});
    first += count;
  }
  return spans;
}

v1::TensorLocation LocationOf(const SafetensorsModel& model, const std::string& name) {
  const TensorEntry& entry = *model.Find(name);
  const SafetensorsFile& file = *model.FileOf(name);
  v1::TensorLocation loc;
  std::error_code ec;  // the path is absolute already when the spec was parsed
  loc.set_file(std::filesystem::absolute(file.path(), ec).lexically_normal().string());
  loc.set_offset(file.header().data_offset + entry.begin);
  loc.set_length(entry.end - entry.begin);
  loc.set_dtype(DTypeName(entry.dtype));
  for (int64_t d : entry.shape) loc.add_shape(d);
  return loc;
}

// The Hessian `glvq calibrate` wrote for weight `name` (cols x cols).
absl::StatusOr<v1::TensorLocation> HessianOf(const SafetensorsModel& hessians,
                                             const std::string& name, int64_t cols) {
  const auto it = hessians.metadata().find(name);
  if (it == hessians.metadata().end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("spec.calibration.hessians: ", hessians.directory().string(),
                     " has no Hessian for '", name, "'; exclude the tensor or recalibrate"));
  }
  const TensorEntry* e = hessians.Find(it->second);
  const bool square =
      e != nullptr && e->shape.size() == 2 && e->shape[0] == cols && e->shape[1] == cols;
  if (!square || !(e->dtype == DType::kF64 || IsFloatDType(e->dtype))) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.calibration.hessians: Hessian '", it->second, "' of '", name,
                     "' is missing or not a float [", cols, ", ", cols, "] tensor"));
  }
  return LocationOf(hessians, it->second);
}

}  // namespace

std::string TaskId(uint32_t index, const std::string& tensor, uint32_t first, uint32_t count) {
  // The name, then the range as fixed-width little-endian bytes: no two
  // (name, range) pairs give the same byte string.
  std::string key = tensor;
  for (uint32_t v : {first, count}) {
    for (int shift = 0; shift < 32; shift += 8)
      key.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  return absl::StrFormat("t-%06u-%016x", index, Fnv1a64(key.data(), key.size()));
}

v1::PlanSummary Plan::Summary() const {
  v1::PlanSummary s;
  s.set_tasks(totals.tasks);
  s.set_tensors_quantized(totals.tensors_quantized);
  s.set_tensors_passed_through(totals.tensors_passed_through);
  s.set_weights(totals.weights);
  s.set_read_bytes(totals.read_bytes);
  s.set_write_bytes(totals.write_bytes);
  s.set_max_task_memory_bytes(totals.max_task_memory_bytes);
  s.set_estimated_seconds(totals.estimated_seconds);
  return s;
}

namespace {

absl::Status ValidateQuantizer(const v1::QuantizerSpec& spec, const std::string& field) {
  ASSIGN_OR_RETURN(const quant::QuantizerConfig config, jobspec::ToQuantizerConfig(spec));
  if (absl::Status s = quant::ValidateConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
  }
  return absl::OkStatus();
}

// spec.quantizer and each quantizer its overrides give (spec.tensors.overrides),
// each error naming the field at fault.
absl::Status ValidateQuantizers(const v1::JobSpec& spec) {
  RETURN_IF_ERROR(ValidateQuantizer(spec.quantizer(), "spec.quantizer"));
  const auto& overrides = spec.tensors().overrides();
  for (int i = 0; i < overrides.size(); ++i) {
    RETURN_IF_ERROR(ValidateQuantizer(jobspec::ApplyOverride(spec.quantizer(), overrides[i]),
                                      absl::StrCat("spec.tensors.overrides[", i, "]")));
  }
  return absl::OkStatus();
}

// A pattern that matches nothing is a typo that would quietly change nothing.
absl::Status CheckOverridesMatch(const v1::TensorSelection& selection,
                                 const std::vector<std::string>& quantized) {
  for (int i = 0; i < selection.overrides_size(); ++i) {
    const std::string& pattern = selection.overrides(i).pattern();
    if (std::none_of(quantized.begin(), quantized.end(),
                     [&](const std::string& n) { return GlobMatch(pattern, n); })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "spec.tensors.overrides[", i, "].pattern '", pattern, "' matches no quantized tensor"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Plan> PlanJob(const v1::JobSpec& spec, const jobspec::JobInputs& inputs,
                             const PlanOptions& options) {
  const SafetensorsModel& model = inputs.model;
  RETURN_IF_ERROR(ValidateQuantizers(spec));
  ASSIGN_OR_RETURN(TensorSelectionResult selection, SelectTensors(spec.tensors(), model));
  const uint64_t budget = spec.workers().max_task_memory_bytes();
  const bool calibrated = spec.has_calibration();
  if (calibrated && !inputs.hessians.has_value()) {
    return absl::InvalidArgumentError("spec.calibration is set but its Hessians were not opened");
  }

  RETURN_IF_ERROR(CheckOverridesMatch(spec.tensors(), selection.quantize));

  Plan plan;
  PlanTotals& t = plan.totals;
  for (const std::string& name : selection.quantize) {
    const v1::QuantizerSpec tensor_spec = jobspec::QuantizerFor(spec, name);
    ASSIGN_OR_RETURN(const quant::QuantizerConfig config, jobspec::ToQuantizerConfig(tensor_spec));
    const TensorEntry& entry = *model.Find(name);
    const Geometry g{entry.shape[0], entry.shape[1], config.group_size,
                     (entry.shape[1] + config.group_size - 1) / config.group_size};
    if (g.groups > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has too many columns"));
    }
    ASSIGN_OR_RETURN(std::vector<GroupSpan> spans,
                     SplitGroups(config, name, g, budget, calibrated));
    const v1::TensorLocation source = LocationOf(model, name);
    v1::TensorLocation hessian;
    size_t hessian_element_bytes = 0;
    if (calibrated) {
      ASSIGN_OR_RETURN(hessian, HessianOf(*inputs.hessians, name, g.cols));
      hessian_element_bytes = DTypeSize(*ParseDType(hessian.dtype()));
    }
    for (const GroupSpan& span : spans) {
      const TaskShape shape = g.Shape(span);
      const auto weights = static_cast<uint64_t>(shape.rows) * static_cast<uint64_t>(shape.cols);
      const auto index = static_cast<uint32_t>(plan.tasks.size());
      v1::Task& task = plan.tasks.emplace_back();
      task.set_id(TaskId(index, name, span.first, span.count));
      task.set_job_id(options.job_id);
      task.set_index(index);
      task.set_tensor(name);
      *task.mutable_source() = source;
      if (calibrated) *task.mutable_hessian() = hessian;
      task.mutable_groups()->set_first(span.first);
      task.mutable_groups()->set_count(span.count);
      task.set_total_groups(static_cast<uint32_t>(g.groups));
      task.set_weights(weights);
      task.set_memory_bytes(EstimateTaskMemory(config, shape, calibrated));
      task.set_estimated_seconds(EstimateSeconds(config, weights));
      *task.mutable_quantizer() = tensor_spec;

      t.weights += weights;
      t.read_bytes += weights * DTypeSize(entry.dtype);
      // The task's diagonal block of the Hessian.
      t.read_bytes += hessian_element_bytes * static_cast<uint64_t>(shape.cols * shape.cols);
      t.write_bytes += EstimatePackedBytes(config, shape);
      t.max_task_memory_bytes = std::max(t.max_task_memory_bytes, task.memory_bytes());
      t.estimated_seconds += task.estimated_seconds();
    }
    t.write_bytes += PerTensorPackedBytes(config);
  }
  for (PassThrough& p : selection.pass_through) {
    const TensorEntry& entry = *model.Find(p.name);
    t.read_bytes += entry.end - entry.begin;
    t.write_bytes += entry.end - entry.begin;
  }
  plan.pass_through = std::move(selection.pass_through);
  t.tasks = static_cast<uint32_t>(plan.tasks.size());
  t.tensors_quantized = static_cast<uint32_t>(selection.quantize.size());
  t.tensors_passed_through = static_cast<uint32_t>(plan.pass_through.size());
  return plan;
}

}  // namespace glvq::coordinator
