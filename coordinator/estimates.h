// What a task costs: memory on a worker, bytes of packed output, CPU time.
// All three are estimates for planning and display (docs/job-spec.md,
// "Task sizing"); none of them changes what a worker computes.
#pragma once

#include <cstdint>

#include "common/quant/config.h"

namespace glvq::coordinator {

// A slice of a weight: `rows` rows, `cols` consecutive columns forming
// `groups` column groups (the last possibly narrower).
struct TaskShape {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t groups = 0;
};

// Whether the column groups of a tensor can be quantized independently, so
// that one tensor may become several tasks. False for everything that
// couples groups: GPTQ, E8P and PVQ (BlockLDLQ error feedback; PVQ's row
// norms span all groups), glvq with ldlq (feedback) or sdba (allocation
// over all groups), and rht (the transform mixes all columns).
bool CanSplitTensor(const quant::QuantizerConfig& config);

// Estimated peak bytes a worker needs for the task:
//   24·rows·cols                      weights F32 (4), Ŵ F32 (4), double
//                                     working copy (8), double scratch (8)
//   + 4·rows·cols                     with rht: the transformed weights
//   + 8·cols²·k                       Hessian blocks in F64: k = 2 with
//                                     calibration (as read, damped), +1 for
//                                     the chol(H⁻¹) factor of gptq, e8p,
//                                     pvq, ldlq and sdba (materialised even for
//                                     H = I), +1 with rht and calibration
//   + 40·rows·cols + 8·cols²·3        trellis with refit_scales: the gain
//                                     refit's values, scratch and n × n
//                                     products
//   + EstimatePackedBytes             the result
uint64_t EstimateTaskMemory(const quant::QuantizerConfig& config, const TaskShape& shape,
                            bool calibrated);

// Bytes of the packed components of the slice (docs/format.md §4): codes at
// the target bits per weight (per group rounded up to bytes), bits,
// offsets, and each method's side information. Excludes the per-tensor
// constants (the closing offset, rht_seed): see PerTensorPackedBytes.
uint64_t EstimatePackedBytes(const quant::QuantizerConfig& config, const TaskShape& shape);
uint64_t PerTensorPackedBytes(const quant::QuantizerConfig& config);

// Single-core throughput in weights per second of the whole pipeline
// (Hessian preparation, RHT, search, quality measurement, write), measured
// with each method's defaults and Hessians on the development machine
// (docs/job-spec.md has the table). A fixed guide; `glvq plan` also
// measures the job's own settings on the machine it runs on
// (client/plan_timing.h).
double WeightsPerSecond(const quant::QuantizerConfig& config);

// weights / WeightsPerSecond: seconds on one CPU core.
double EstimateSeconds(const quant::QuantizerConfig& config, uint64_t weights);

}  // namespace glvq::coordinator
