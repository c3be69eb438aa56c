#include "worker/cuda/scalar_runner.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "worker/cpu/e8p_codebook.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/cublas_api.h"
#include "worker/cuda/cublas_status.h"
#include "worker/cuda/device_array.h"
#include "worker/cuda/multi_device.h"
#include "worker/cuda/scalar_kernels.h"

namespace glvq::cuda {
namespace {

using cpu::kGptqBatch;

struct HandleCloser {
  void operator()(cublasHandle_t h) const { (*Cublas())->destroy(h); }
};
using CublasHandle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, HandleCloser>;

const char* MethodOf(const ScalarJob& job) {
  if (job.e8p != nullptr) return "E8P";
  return job.sweep != nullptr ? "GPTQ" : "RTN";
}

int64_t GroupsOf(const ScalarJob& job) {
  return (job.w.cols + job.group_size - 1) / job.group_size;
}

// E8P indices per row of the whole tensor (E8pIndicesView's layout).
int64_t E8pVectorsPerRow(const ScalarJob& job) {
  return cpu::E8pIndicesView{nullptr, 0, job.w.cols, job.group_size}.VectorsPerRow();
}

// What every pass on a device reads: importance, GPTQ's sweep or E8P's
// feedback, E8P's tables and scales.
struct FixedInputs {
  DeviceArray<double> diag, u, abs_by_coord;
  DeviceArray<int64_t> order, position;  // position[order[k]] = k
  DeviceArray<int> abs_parity;
  DeviceArray<float> scales;

  static uint64_t Bytes(const ScalarJob& job) {
    const auto n = static_cast<uint64_t>(job.w.cols);
    uint64_t bytes = job.sweep != nullptr ? n * n * sizeof(double) : 0;
    if (job.e8p != nullptr) {
      return bytes + cpu::kE8pNumAbs * (cpu::kE8pDim * sizeof(double) + sizeof(int)) +
             job.e8p->scales.size() * sizeof(float);
    }
    bytes += n * sizeof(double);
    if (job.sweep != nullptr) bytes += 2 * n * sizeof(int64_t);
    return bytes;
  }

  cpu::E8pTables tables() const { return {abs_by_coord.get(), abs_parity.get()}; }

  // E8P reads U alone (its order is the identity); GPTQ the whole sweep;
  // RTN the importance.
  absl::Status Upload(const ScalarJob& job) {
    if (job.sweep != nullptr) {
      const size_t n = static_cast<size_t>(job.w.cols);
      RETURN_IF_ERROR(u.Allocate(n * n));
      RETURN_IF_ERROR(u.Upload(std::span<const double>(job.sweep->u.data(), n * n)));
    }
    if (job.e8p != nullptr) return UploadE8p(*job.e8p);
    if (job.sweep != nullptr) return UploadOrder(*job.sweep);
    RETURN_IF_ERROR(diag.Allocate(job.diag.size()));
    return diag.Upload(job.diag);
  }

  absl::Status UploadOrder(const cpu::GptqSweep& s) {
    const size_t n = s.order.size();
    std::vector<int64_t> pos(n);
    for (size_t k = 0; k < n; ++k) pos[static_cast<size_t>(s.order[k])] = static_cast<int64_t>(k);
    RETURN_IF_ERROR(diag.Allocate(n));
    RETURN_IF_ERROR(order.Allocate(n));
    RETURN_IF_ERROR(position.Allocate(n));
    RETURN_IF_ERROR(diag.Upload(s.diag));
    RETURN_IF_ERROR(order.Upload(s.order));
    return position.Upload(pos);
  }

  absl::Status UploadE8p(const E8pPass& e8p) {
    const cpu::E8pTables host = cpu::E8pCodebook::Get().tables();
    constexpr size_t kAbs = cpu::kE8pNumAbs, kCoords = cpu::kE8pDim * cpu::kE8pNumAbs;
    RETURN_IF_ERROR(abs_by_coord.Allocate(kCoords));
    RETURN_IF_ERROR(abs_parity.Allocate(kAbs));
    RETURN_IF_ERROR(scales.Allocate(e8p.scales.size()));
    RETURN_IF_ERROR(abs_by_coord.Upload(std::span<const double>(host.abs_by_coord, kCoords)));
    RETURN_IF_ERROR(abs_parity.Upload(std::span<const int>(host.abs_parity, kAbs)));
    return scales.Upload(e8p.scales);
  }
};

uint64_t BytesPerTile(const ScalarJob& job) {
  const auto n = static_cast<uint64_t>(job.w.cols);
  const auto groups = static_cast<uint64_t>(GroupsOf(job));
  uint64_t bytes = kRowTile * n * sizeof(double);  // weights
  if (job.e8p != nullptr) {
    bytes += kRowTile * static_cast<uint64_t>(E8pVectorsPerRow(job)) * sizeof(uint16_t);
    if (job.e8p->record_energy) bytes += kRowTile * groups * sizeof(double);
  } else {
    bytes += kRowTile * (n + groups * sizeof(cpu::ScalarGrid));  // codes, grids
  }
  if (job.sweep != nullptr) bytes += kRowTile * kGptqBatch * sizeof(double);
  return bytes;
}

// The pass's weights in tile layout (scalar_kernels.h), in sweep order, as
// doubles; rows past the tensor are zeros.
std::vector<double> TiledWeights(const ScalarJob& job, int64_t row0, int64_t tiles) {
  const int64_t n = job.w.cols;
  const int64_t* order = job.sweep != nullptr ? job.sweep->order.data() : nullptr;
  std::vector<double> out(static_cast<size_t>(tiles * n * kRowTile), 0.0);
  for (int64_t t = 0; t < tiles; ++t) {
    for (int64_t rr = 0; rr < kRowTile && row0 + t * kRowTile + rr < job.w.rows; ++rr) {
      const float* src = job.w.data + (row0 + t * kRowTile + rr) * n;
      double* dst = out.data() + t * n * kRowTile + rr;
      for (int64_t k = 0; k < n; ++k) dst[k * kRowTile] = src[order != nullptr ? order[k] : k];
    }
  }
  return out;
}

// The feedback of batch [b0, b1) onto the columns after it: per tile one
// Dgemm W[:, b1:] −= E · U[b0:b1, b1:], of the same shape on any pass.
absl::Status TrailingUpdate(const FixedInputs& in, cublasHandle_t handle, const TiledRows& rows,
                            int64_t b0, int64_t b1) {
  const int64_t n = rows.n;
  if (b1 == n) return absl::OkStatus();
  ASSIGN_OR_RETURN(const CublasApi* cublas, Cublas());
  const double minus_one = -1.0, one = 1.0;
  for (int64_t t = 0; t < rows.tiles; ++t) {
    CUBLAS_RETURN_IF_ERROR(cublas->dgemm(
        handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(kRowTile), static_cast<int>(n - b1),
        static_cast<int>(b1 - b0), &minus_one, rows.err + t * kGptqBatch * kRowTile,
        static_cast<int>(kRowTile), in.u.get() + b0 + b1 * n, static_cast<int>(n), &one,
        rows.w + t * n * kRowTile + b1 * kRowTile, static_cast<int>(kRowTile)));
  }
  return absl::OkStatus();
}

// RTN (one launch) or GPTQ (static grids, then per lazy batch one launch
// and its feedback); grids and codes of the rows that exist into *q.
absl::Status ScalarPass(const ScalarJob& job, const FixedInputs& in, cublasHandle_t handle,
                        const TiledRows& rows, int64_t row0, cpu::ScalarQuantization* q) {
  const int64_t n = rows.n, pass_rows = rows.tiles * kRowTile;
  DeviceArray<uint8_t> codes;
  DeviceArray<cpu::ScalarGrid> grids;
  RETURN_IF_ERROR(codes.Allocate(static_cast<size_t>(pass_rows * n)));
  RETURN_IF_ERROR(grids.Allocate(static_cast<size_t>(pass_rows * q->num_groups)));
  const cpu::ScalarCodesView out{grids.get(), codes.get(), pass_rows, n, q->group_size};
  const bool static_grids = job.sweep == nullptr || job.sweep->static_groups;
  if (static_grids) {
    CUDA_RETURN_IF_ERROR(LaunchFitGrids(rows, job.sweep ? in.position.get() : nullptr,
                                        in.diag.get(), job.bits, job.min_max,
                                        /*encode=*/job.sweep == nullptr, out, nullptr));
  }
  if (job.sweep != nullptr) {
    const cpu::GptqSweep& s = *job.sweep;
    const cpu::GptqSweepView view{in.u.get(), in.order.get(), in.diag.get(),  n,
                                  job.bits,   job.min_max,    s.static_groups};
    for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
      b1 = cpu::GptqBatchEnd(b0, n, out.group_size, s.static_groups);
      CUDA_RETURN_IF_ERROR(LaunchGptqBatch(view, b0, b1, rows, out, nullptr));
      RETURN_IF_ERROR(TrailingUpdate(in, handle, rows, b0, b1));
    }
  }
  std::vector<cpu::ScalarGrid> host_grids(grids.size());
  std::vector<uint8_t> host_codes(codes.size());
  RETURN_IF_ERROR(grids.Download(host_grids));
  RETURN_IF_ERROR(codes.Download(host_codes));
  const int64_t valid = std::min(pass_rows, q->rows - row0);
  for (int64_t g = 0; g < q->num_groups; ++g) {
    std::copy_n(host_grids.begin() + g * pass_rows, valid, q->grids.begin() + g * q->rows + row0);
    const int64_t width = q->GroupWidth(g);
    std::copy_n(host_codes.begin() + pass_rows * g * q->group_size, valid * width,
                q->codes.begin() + q->CodeOffset(g) + row0 * width);
  }
  return absl::OkStatus();
}

// E8P: BlockLDLQ in batches of kGptqBatch (128, a multiple of 8) columns;
// indices (and the trial's energies) of the rows that exist into `out`.
absl::Status E8pPassOnDevice(const ScalarJob& job, const FixedInputs& in, cublasHandle_t handle,
                             const TiledRows& rows, int64_t row0, const ScalarOutputs& out) {
  const int64_t n = rows.n, pass_rows = rows.tiles * kRowTile, groups = GroupsOf(job);
  DeviceArray<uint16_t> indices;
  DeviceArray<double> energy;
  RETURN_IF_ERROR(indices.Allocate(static_cast<size_t>(pass_rows * E8pVectorsPerRow(job))));
  if (job.e8p->record_energy) {
    RETURN_IF_ERROR(energy.Allocate(static_cast<size_t>(groups * pass_rows)));
    RETURN_IF_ERROR(energy.Zero());
  }
  const E8pSweep sweep{in.tables(), in.scales.get(), job.sweep ? in.u.get() : nullptr, n};
  const cpu::E8pIndicesView view{indices.get(), pass_rows, n, job.group_size};
  for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
    b1 = std::min(b0 + kGptqBatch, n);
    CUDA_RETURN_IF_ERROR(LaunchE8pBatch(sweep, b0, b1, rows, view, energy.get(), nullptr));
    if (job.sweep != nullptr) RETURN_IF_ERROR(TrailingUpdate(in, handle, rows, b0, b1));
  }
  std::vector<uint16_t> host(indices.size());
  RETURN_IF_ERROR(indices.Download(host));
  const int64_t valid = std::min(pass_rows, job.w.rows - row0);
  const int64_t per_group = job.group_size / cpu::kE8pDim;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t width = std::min(job.group_size, n - g * job.group_size);
    const int64_t per_row = (width + cpu::kE8pDim - 1) / cpu::kE8pDim;
    std::copy_n(host.begin() + pass_rows * g * per_group, valid * per_row, &out.e8p.at(g, row0, 0));
  }
  if (job.e8p->record_energy) {
    std::vector<double> e(energy.size());
    RETURN_IF_ERROR(energy.Download(e));
    for (int64_t g = 0; g < groups; ++g) {
      std::copy_n(e.begin() + g * pass_rows, valid, out.energy + g * job.w.rows + row0);
    }
  }
  return absl::OkStatus();
}

absl::Status RunPass(const ScalarJob& job, const FixedInputs& in, cublasHandle_t handle,
                     int64_t row0, int64_t tiles, const ScalarOutputs& out) {
  const int64_t n = job.w.cols;
  DeviceArray<double> w, err;
  RETURN_IF_ERROR(w.Allocate(static_cast<size_t>(tiles * n * kRowTile)));
  if (job.sweep != nullptr) {
    RETURN_IF_ERROR(err.Allocate(static_cast<size_t>(tiles * kGptqBatch * kRowTile)));
  }
  RETURN_IF_ERROR(w.Upload(TiledWeights(job, row0, tiles)));
  const TiledRows rows{w.get(), err.get(), tiles, n};
  if (job.e8p != nullptr) return E8pPassOnDevice(job, in, handle, rows, row0, out);
  return ScalarPass(job, in, handle, rows, row0, out.q);
}

bool OutOfMemory(const absl::Status& s) { return s.code() == absl::StatusCode::kResourceExhausted; }

// A device's run of tiles, in passes planned from its free memory.
absl::Status RunDevice(const ScalarJob& job, const DeviceSpan& span, int64_t max_tiles,
                       const ScalarOutputs& out) {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(span.device));
  FixedInputs in;
  if (const absl::Status s = in.Upload(job); !s.ok()) {
    if (!OutOfMemory(s)) return s;
    return absl::ResourceExhaustedError(absl::StrCat(
        MethodOf(job), " on CUDA device ", span.device, ": the inputs every pass needs (",
        FixedInputs::Bytes(job), " bytes for ", job.w.cols, " columns) do not fit: ", s.message()));
  }
  ASSIGN_OR_RETURN(const CublasApi* cublas, Cublas());
  cublasHandle_t raw = nullptr;
  CUBLAS_RETURN_IF_ERROR(cublas->create(&raw));
  const CublasHandle handle(raw);
  const uint64_t per_tile = BytesPerTile(job);
  // DeviceSpan counts groups for GLVQ; here its units are row tiles.
  const int64_t end = span.first_group + span.groups;
  for (int64_t next = span.first_group; next < end;) {
    size_t free_bytes = 0, total_bytes = 0;
    CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::vector<int64_t> plan =
        PlanBatches(end - next, per_tile, free_bytes, kDeviceHeadroomBytes, max_tiles);
    if (plan.empty()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          MethodOf(job), " on CUDA device ", span.device, ": a tile of ", kRowTile, " rows × ",
          job.w.cols, " columns needs ", per_tile, " bytes and ", kDeviceHeadroomBytes,
          " more are kept free; ", free_bytes, " of ", total_bytes, " are free"));
    }
    const absl::Status status = RunPass(job, in, handle.get(), next * kRowTile, plan.front(), out);
    if (OutOfMemory(status) && plan.front() > 1) {
      max_tiles = plan.front() / 2;
      continue;
    }
    RETURN_IF_ERROR(status);
    next += plan.front();
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunScalarJob(const ScalarJob& job, std::span<const int> devices, int64_t max_tiles,
                          const ScalarOutputs& out) {
  if (job.w.cols > INT_MAX || job.w.rows < 1 || devices.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(MethodOf(job), " on CUDA: ", job.w.rows, " × ",
                                                   job.w.cols, " on ", devices.size(),
                                                   " devices is not supported"));
  }
  const std::vector<DeviceSpan> spans =
      SplitGroups((job.w.rows + kRowTile - 1) / kRowTile, devices);
  std::vector<absl::Status> status(spans.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < spans.size(); ++i) {
    threads.emplace_back([&, i] { status[i] = RunDevice(job, spans[i], max_tiles, out); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

}  // namespace glvq::cuda
