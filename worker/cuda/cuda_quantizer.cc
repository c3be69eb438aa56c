#include "worker/cuda/cuda_quantizer.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cpu/glvq_generator.h"
#include "worker/cpu/sdba.h"
#include "worker/cuda/device.h"
#include "worker/cuda/group_solver.h"
#include "worker/cuda/multi_device.h"
#include "worker/engine/problem.h"

namespace glvq::cuda {
namespace {

using Eigen::MatrixXd;
using engine::Quantizer;

class CudaGlvqQuantizer final : public Quantizer {
 public:
  CudaGlvqQuantizer(const engine::QuantizerConfig& c, std::vector<int> devices)
      : Quantizer(c), devices_(std::move(devices)) {}

 protected:
  absl::Status QuantizeImpl(const Problem& p, engine::QuantizeResult* result) const override {
    const engine::QuantizerConfig& c = config();
    std::vector<MatrixXd> blocks;
    for (int64_t g = 0; !p.hessian.is_identity() && g < p.num_groups; ++g) {
      const int64_t c0 = g * c.group_size;
      blocks.push_back(p.hessian.Block(c0, std::min<int64_t>(c.group_size, p.w.cols - c0)));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<TaskDevices> task,
                     TaskDevices::Create({p.w, c.group_size, c.dim, blocks}, devices_));
    std::vector<int32_t> bits(static_cast<size_t>(p.num_groups), static_cast<int32_t>(c.bits));
    if (c.sdba) {
      ASSIGN_OR_RETURN(bits, AllocateOnDevices(*task, p));
    }
    std::vector<SpanGroupResult> solved(bits.size());
    std::vector<const uint8_t*> packed(task->size());
    RETURN_IF_ERROR(task->ForEach([&](size_t i) -> absl::Status {
      const DeviceSpan& s = task->span(i);
      SpanProblem sp;
      sp.bits.assign(bits.begin() + s.first_group, bits.begin() + s.first_group + s.groups);
      if (!blocks.empty()) {
        sp.hessian = std::span<const MatrixXd>(blocks).subspan(static_cast<size_t>(s.first_group),
                                                               static_cast<size_t>(s.groups));
      }
      sp.options = c.glvq;
      sp.threads = c.threads;
      ASSIGN_OR_RETURN(std::vector<SpanGroupResult> r, SolveSpan(task->workspace(i), sp));
      std::move(r.begin(), r.end(), solved.begin() + s.first_group);
      ASSIGN_OR_RETURN(const DeviceArray<uint8_t>* codes, task->workspace(i).PackBest());
      packed[i] = codes->get();
      return absl::OkStatus();
    }));
    return Assemble(p, bits, solved, *task, packed, result);
  }

 private:
  // SDBA with the salience's column energies and the RTN proxies computed
  // on the devices; the allocation is the CPU's (cpu::AllocateBitsWith).
  absl::StatusOr<std::vector<int32_t>> AllocateOnDevices(TaskDevices& task,
                                                         const Problem& p) const {
    const int64_t gs = config().group_size;
    std::vector<double> energy(static_cast<size_t>(p.w.cols));
    RETURN_IF_ERROR(task.ForEach([&](size_t i) -> absl::Status {
      ASSIGN_OR_RETURN(const std::vector<double> e, task.workspace(i).ColumnEnergies());
      std::copy(e.begin(), e.end(), energy.begin() + task.span(i).first_group * gs);
      return absl::OkStatus();
    }));
    const std::vector<double> salience = cpu::GroupSalienceFromEnergies(energy, p.hessian, gs);
    auto proxies = [&](int n, int64_t full) -> absl::StatusOr<cpu::RtnProxyTable> {
      cpu::RtnProxyTable table(static_cast<size_t>(p.num_groups));
      RETURN_IF_ERROR(task.ForEach([&](size_t i) -> absl::Status {
        ASSIGN_OR_RETURN(const cpu::RtnProxyTable t, task.workspace(i).RtnProxies(n));
        std::copy(t.begin(), t.end(), table.begin() + task.span(i).first_group);
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

  absl::Status Assemble(const Problem& p, const std::vector<int32_t>& bits,
                        const std::vector<SpanGroupResult>& solved, TaskDevices& task,
                        const std::vector<const uint8_t*>& packed,
                        engine::QuantizeResult* result) const {
    QuantizedTensor t = engine::MakeTensorShell(p, config(), "glvq", config().dim);
    for (size_t g = 0; g < solved.size(); ++g) {
      const SpanGroupResult& s = solved[g];
      cpu::AppendGroupSideInfo(bits[g], s.scale, s.mu, s.g, s.iterations, &t, &result->groups[g]);
    }
    t.offsets = ComputeGroupOffsets(t.rows, t.cols, t.group_size, t.bits);
    t.codes.resize(static_cast<size_t>(t.offsets.back()));
    RETURN_IF_ERROR(task.GatherCodes(t.offsets, packed, t.codes));
    result->tensor = std::move(t);
    return absl::OkStatus();
  }

  std::vector<int> devices_;
};

}  // namespace

bool CudaSupports(const engine::QuantizerConfig& c) {
  return c.method == engine::Method::kGlvq && !c.glvq.exact_search && !c.ldlq;
}

absl::StatusOr<std::unique_ptr<engine::Quantizer>> MakeCudaQuantizer(
    const engine::QuantizerConfig& config, std::vector<int> devices) {
  RETURN_IF_ERROR(engine::ValidateConfig(config));
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
        config.method != engine::Method::kGlvq
            ? absl::StrCat("method ", engine::MethodName(config.method))
            : std::string(config.ldlq ? "glvq with ldlq" : "glvq with exact_search");
    return absl::UnimplementedError(
        absl::StrCat("the CUDA engine does not implement ", what, "; use the CPU engine"));
  }
  return std::unique_ptr<engine::Quantizer>(
      std::make_unique<CudaGlvqQuantizer>(config, std::move(devices)));
}

}  // namespace glvq::cuda
