#include "worker/cuda/cuda_quantizer.h"

#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cpu/glvq_generator.h"
#include "worker/cpu/sdba.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/device.h"
#include "worker/cuda/group_solver.h"
#include "worker/cuda/multi_device.h"
#include "worker/cuda/scalar_quantizer.h"
#include "worker/engine/problem.h"

namespace glvq::cuda {
namespace {

using Eigen::MatrixXd;
using engine::Quantizer;

class CudaGlvqQuantizer final : public Quantizer {
 public:
  CudaGlvqQuantizer(const quant::QuantizerConfig& c, std::vector<int> devices,
                    int64_t max_batch_groups)
      : Quantizer(c), devices_(std::move(devices)), max_batch_groups_(max_batch_groups) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, quant::QuantizeResult* result) const override {
    const quant::QuantizerConfig& c = config();
    std::vector<MatrixXd> blocks;
    for (int64_t g = 0; !p.hessian.is_identity() && g < p.num_groups; ++g) {
      const int64_t c0 = g * c.group_size;
      blocks.push_back(p.hessian.Block(c0, std::min<int64_t>(c.group_size, p.w.cols - c0)));
    }
    ASSIGN_OR_RETURN(
        std::unique_ptr<TaskDevices> task,
        TaskDevices::Create({p.w, c.group_size, c.dim, blocks}, devices_, max_batch_groups_));
    std::vector<int32_t> bits(static_cast<size_t>(p.num_groups), static_cast<int32_t>(c.bits));
    if (c.sdba) {
      ASSIGN_OR_RETURN(bits, AllocateOnDevices(*task, p));
    }
    QuantizedTensor t = engine::MakeTensorShell(p, c, c.dim);
    t.offsets = ComputeGroupOffsets(t.rows, t.cols, t.group_size,
                                    std::vector<uint8_t>(bits.begin(), bits.end()));
    t.codes.resize(static_cast<size_t>(t.offsets.back()));
    std::vector<SpanGroupResult> solved(bits.size());
    RETURN_IF_ERROR(SolveOnDevices(*task, bits, blocks, &solved, &t));
    for (size_t g = 0; g < solved.size(); ++g) {
      const SpanGroupResult& s = solved[g];
      cpu::AppendGroupSideInfo(bits[g], s.scale, s.mu, s.g, s.iterations, &t, &result->groups[g]);
    }
    result->tensor = std::move(t);
    return absl::OkStatus();
  }

 private:
  // Learns every group, batch by batch: side information into *solved,
  // packed codes into t->codes at t->offsets. Each batch writes its own
  // groups only; a batch redone after running out of memory writes the
  // same values again.
  absl::Status SolveOnDevices(TaskDevices& task, const std::vector<int32_t>& bits,
                              std::span<const MatrixXd> blocks,
                              std::vector<SpanGroupResult>* solved, QuantizedTensor* t) const {
    return task.ForEachBatch([&](const GroupBatch& b) -> absl::Status {
      const auto first = static_cast<size_t>(b.first_group), n = static_cast<size_t>(b.groups);
      SpanProblem sp;
      sp.bits.assign(bits.begin() + b.first_group, bits.begin() + b.first_group + b.groups);
      if (!blocks.empty()) sp.hessian = blocks.subspan(first, n);
      sp.options = config().glvq;
      sp.threads = config().threads;
      ASSIGN_OR_RETURN(std::vector<SpanGroupResult> r, SolveSpan(*b.ws, sp));
      std::move(r.begin(), r.end(), solved->begin() + b.first_group);
      ASSIGN_OR_RETURN(const DeviceArray<uint8_t>* packed, b.ws->PackBest());
      const auto begin = static_cast<size_t>(t->offsets[first]);
      const auto end = static_cast<size_t>(t->offsets[first + n]);
      return packed->Download(std::span<uint8_t>(t->codes).subspan(begin, end - begin));
    });
  }

  // SDBA with the salience's column energies and the RTN proxies computed
  // on the devices, batch by batch into host arrays; the allocation needs
  // every group's figures and is the CPU's (cpu::AllocateBitsWith).
  absl::StatusOr<std::vector<int32_t>> AllocateOnDevices(TaskDevices& task,
                                                         const Problem& p) const {
    const int64_t gs = config().group_size;
    std::vector<double> energy(static_cast<size_t>(p.w.cols));
    RETURN_IF_ERROR(task.ForEachBatch([&](const GroupBatch& b) -> absl::Status {
      ASSIGN_OR_RETURN(const std::vector<double> e, b.ws->ColumnEnergies());
      std::copy(e.begin(), e.end(), energy.begin() + b.first_group * gs);
      return absl::OkStatus();
    }));
    const std::vector<double> salience = cpu::GroupSalienceFromEnergies(energy, p.hessian, gs);
    auto proxies = [&](int n, int64_t full) -> absl::StatusOr<cpu::RtnProxyTable> {
      cpu::RtnProxyTable table(static_cast<size_t>(p.num_groups));
      RETURN_IF_ERROR(task.ForEachBatch([&](const GroupBatch& b) -> absl::Status {
        ASSIGN_OR_RETURN(const cpu::RtnProxyTable t, b.ws->RtnProxies(n));
        std::copy(t.begin(), t.end(), table.begin() + b.first_group);
        return absl::OkStatus();
      }));
      table.resize(static_cast<size_t>(full));
      return table;
    };
    absl::StatusOr<std::vector<int>> bits =
        cpu::AllocateBitsWith(salience, p.w.cols, gs, config().bits, proxies);
    if (!bits.ok() && bits.status().code() == absl::StatusCode::kInvalidArgument) {
      return absl::InvalidArgumentError(p.name + ": " + std::string(bits.status().message()));
    }
    if (!bits.ok()) return bits.status();
    return std::vector<int32_t>(bits->begin(), bits->end());
  }

  std::vector<int> devices_;
  int64_t max_batch_groups_;  // 0: batches as large as memory allows
};

}  // namespace

bool CudaSupports(const quant::QuantizerConfig& c) {
  switch (c.method) {
    case quant::Method::kGlvq:
      return !c.glvq.exact_search && !c.ldlq && c.glvq.mu_grid == 0 && !c.glvq.row_gain;
    case quant::Method::kRtn:
    case quant::Method::kGptq:
    case quant::Method::kE8p:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeCudaQuantizer(
    const quant::QuantizerConfig& config, std::vector<int> devices, int64_t max_batch_groups) {
  RETURN_IF_ERROR(quant::ValidateConfig(config));
  if (max_batch_groups < 0) {
    return absl::InvalidArgumentError("max_batch_groups must not be negative");
  }
  if (max_batch_groups == 0) {
    ASSIGN_OR_RETURN(max_batch_groups, ParseMaxBatchGroups(std::getenv(kMaxBatchGroupsEnv)));
  }
  ASSIGN_OR_RETURN(const int count, UsableDeviceCount());
  if (devices.empty()) {
    devices.resize(static_cast<size_t>(count));
    std::iota(devices.begin(), devices.end(), 0);
  }
  std::vector<int> sorted = devices;
  std::sort(sorted.begin(), sorted.end());
  if (sorted.front() < 0 || sorted.back() >= count ||
      std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return absl::InvalidArgumentError(absl::StrCat("CUDA devices must be distinct ordinals below ",
                                                   count, " (the visible devices)"));
  }
  if (!CudaSupports(config)) {
    const std::string what =
        config.method != quant::Method::kGlvq
            ? absl::StrCat("method ", quant::MethodName(config.method))
            : std::string(config.ldlq ? "glvq with ldlq" : "glvq with exact_search");
    return absl::UnimplementedError(
        absl::StrCat("the CUDA engine does not implement ", what, "; use the CPU engine"));
  }
  if (config.method != quant::Method::kGlvq) {
    return NewCudaScalarQuantizer(config, std::move(devices), max_batch_groups);
  }
  return std::unique_ptr<engine::Quantizer>(
      std::make_unique<CudaGlvqQuantizer>(config, std::move(devices), max_batch_groups));
}

}  // namespace glvq::cuda
