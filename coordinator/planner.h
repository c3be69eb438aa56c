// The planner: a job spec and its model become the list of tasks the
// coordinator leases, plus the tensors copied unchanged and the totals the
// `plan` command and JobStatus show.
//
// The plan is a pure function of the spec and the model's headers (never of
// the workers connected or the time), so a restarted coordinator re-plans
// the same task ids and its journal of committed tasks still applies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jobspec/job_spec.h"
#include "coordinator/tensor_selection.h"
#include "glvq/v1/job.pb.h"
#include "glvq/v1/task.pb.h"

namespace glvq::coordinator {

struct PlanTotals {
  uint32_t tasks = 0;
  uint32_t tensors_quantized = 0;
  uint32_t tensors_passed_through = 0;
  uint64_t weights = 0;                // weights to quantize
  uint64_t read_bytes = 0;             // weights read (+ Hessian blocks) and pass-through copied
  uint64_t write_bytes = 0;            // packed output, estimated
  uint64_t max_task_memory_bytes = 0;  // the largest task's estimate
  double estimated_seconds = 0;        // one CPU core; an estimate
};

struct Plan {
  std::vector<v1::Task> tasks;            // in plan order, which is id order
  std::vector<PassThrough> pass_through;  // sorted by name
  PlanTotals totals;

  v1::PlanSummary Summary() const;
};

struct PlanOptions {
  std::string job_id;  // stamped into every task; may be empty (offline plans)
};

// Tasks in tensor-name order, then group order. A tensor is one task unless
// its estimate exceeds spec.workers.maxTaskMemoryBytes (0/unset: no limit):
// then, where the method allows (CanSplitTensor), its column groups are cut
// into the fewest tasks that fit, balanced to within one group; otherwise,
// or if even one group does not fit, RESOURCE_EXHAUSTED naming the tensor
// and the bytes it needs. Selection errors as SelectTensors;
// INVALID_ARGUMENT if the quantizer settings are invalid. With calibration,
// every task names its Hessian (found through the calibration directory's
// __metadata__, weight name -> Hessian tensor); FAILED_PRECONDITION if a
// quantized weight has none, INVALID_ARGUMENT if it is not [cols, cols].
absl::StatusOr<Plan> PlanJob(const v1::JobSpec& spec, const jobspec::JobInputs& inputs,
                             const PlanOptions& options = {});

// "t-<index, at least 6 digits>-<FNV-1a-64 of the tensor name and group
// range, 16 hex digits>".
std::string TaskId(uint32_t index, const std::string& tensor, uint32_t first, uint32_t count);

}  // namespace glvq::coordinator
