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

const char* MethodOf(const ScalarJob& job) { return job.sweep != nullptr ? "GPTQ" : "RTN"; }

// What every pass on a device reads: importance, and GPTQ's sweep.
struct FixedInputs {
  DeviceArray<double> diag, u;
  DeviceArray<int64_t> order, position;  // position[order[k]] = k

  static uint64_t Bytes(const ScalarJob& job) {
    const auto n = static_cast<uint64_t>(job.w.cols);
    return n * sizeof(double) + (job.sweep ? n * n * sizeof(double) + 2 * n * sizeof(int64_t) : 0);
  }

  absl::Status Upload(const ScalarJob& job) {
    const auto n = static_cast<size_t>(job.w.cols);
    if (job.sweep == nullptr) {
      RETURN_IF_ERROR(diag.Allocate(n));
      return diag.Upload(job.diag);
    }
    const cpu::GptqSweep& s = *job.sweep;
    std::vector<int64_t> pos(n);
    for (size_t k = 0; k < n; ++k) pos[static_cast<size_t>(s.order[k])] = static_cast<int64_t>(k);
    RETURN_IF_ERROR(diag.Allocate(n));
    RETURN_IF_ERROR(u.Allocate(n * n));
    RETURN_IF_ERROR(order.Allocate(n));
    RETURN_IF_ERROR(position.Allocate(n));
    RETURN_IF_ERROR(diag.Upload(s.diag));
    RETURN_IF_ERROR(u.Upload(std::span<const double>(s.u.data(), n * n)));
    RETURN_IF_ERROR(order.Upload(s.order));
    return position.Upload(pos);
  }
};

uint64_t BytesPerTile(const ScalarJob& job, int64_t groups) {
  const auto n = static_cast<uint64_t>(job.w.cols);
  uint64_t bytes = kRowTile * n * (sizeof(double) + 1);  // weights, codes
  bytes += kRowTile * static_cast<uint64_t>(groups) * sizeof(cpu::ScalarGrid);
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

// GPTQ's lazy batches over the pass: one launch per batch, then per tile
// one Dgemm W[:, b1:] −= E · U[b0:b1, b1:] of the same shape on any pass.
absl::Status SweepPass(const ScalarJob& job, const FixedInputs& in, cublasHandle_t handle,
                       const TiledRows& rows, const cpu::ScalarCodesView& out) {
  const cpu::GptqSweep& s = *job.sweep;
  const int64_t n = rows.n;
  const cpu::GptqSweepView view{in.u.get(), in.order.get(), in.diag.get(),  n,
                                job.bits,   job.min_max,    s.static_groups};
  if (s.static_groups) {
    CUDA_RETURN_IF_ERROR(LaunchFitGrids(rows, in.position.get(), in.diag.get(), job.bits,
                                        job.min_max, /*encode=*/false, out, nullptr));
  }
  ASSIGN_OR_RETURN(const CublasApi* cublas, Cublas());
  const double minus_one = -1.0, one = 1.0;
  for (int64_t b0 = 0, b1; b0 < n; b0 = b1) {
    b1 = cpu::GptqBatchEnd(b0, n, out.group_size, s.static_groups);
    CUDA_RETURN_IF_ERROR(LaunchGptqBatch(view, b0, b1, rows, out, nullptr));
    if (b1 == n) continue;
    for (int64_t t = 0; t < rows.tiles; ++t) {
      CUBLAS_RETURN_IF_ERROR(cublas->dgemm(
          handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(kRowTile), static_cast<int>(n - b1),
          static_cast<int>(b1 - b0), &minus_one, rows.err + t * kGptqBatch * kRowTile,
          static_cast<int>(kRowTile), in.u.get() + b0 + b1 * n, static_cast<int>(n), &one,
          rows.w + t * n * kRowTile + b1 * kRowTile, static_cast<int>(kRowTile)));
    }
  }
  return absl::OkStatus();
}

// Copies the pass's grids and codes of rows that exist into *q.
void Scatter(const std::vector<cpu::ScalarGrid>& grids, const std::vector<uint8_t>& codes,
             int64_t row0, int64_t pass_rows, cpu::ScalarQuantization* q) {
  const int64_t valid = std::min(pass_rows, q->rows - row0);
  for (int64_t g = 0; g < q->num_groups; ++g) {
    std::copy_n(grids.begin() + g * pass_rows, valid, q->grids.begin() + g * q->rows + row0);
    const int64_t width = q->GroupWidth(g);
    std::copy_n(codes.begin() + pass_rows * g * q->group_size, valid * width,
                q->codes.begin() + q->CodeOffset(g) + row0 * width);
  }
}

absl::Status RunPass(const ScalarJob& job, const FixedInputs& in, cublasHandle_t handle,
                     int64_t row0, int64_t tiles, cpu::ScalarQuantization* q) {
  const int64_t n = job.w.cols, pass_rows = tiles * kRowTile;
  DeviceArray<double> w, err;
  DeviceArray<uint8_t> codes;
  DeviceArray<cpu::ScalarGrid> grids;
  RETURN_IF_ERROR(w.Allocate(static_cast<size_t>(tiles * n * kRowTile)));
  if (job.sweep != nullptr)
    RETURN_IF_ERROR(err.Allocate(static_cast<size_t>(tiles * kGptqBatch * kRowTile)));
  RETURN_IF_ERROR(codes.Allocate(static_cast<size_t>(pass_rows * n)));
  RETURN_IF_ERROR(grids.Allocate(static_cast<size_t>(pass_rows * q->num_groups)));
  RETURN_IF_ERROR(w.Upload(TiledWeights(job, row0, tiles)));
  const TiledRows rows{w.get(), err.get(), tiles, n};
  const cpu::ScalarCodesView out{grids.get(), codes.get(), pass_rows, n, q->group_size};
  if (job.sweep == nullptr) {
    CUDA_RETURN_IF_ERROR(LaunchFitGrids(rows, nullptr, in.diag.get(), job.bits, job.min_max,
                                        /*encode=*/true, out, nullptr));
  } else {
    RETURN_IF_ERROR(SweepPass(job, in, handle, rows, out));
  }
  std::vector<cpu::ScalarGrid> host_grids(grids.size());
  std::vector<uint8_t> host_codes(codes.size());
  RETURN_IF_ERROR(grids.Download(host_grids));
  RETURN_IF_ERROR(codes.Download(host_codes));
  Scatter(host_grids, host_codes, row0, pass_rows, q);
  return absl::OkStatus();
}

bool OutOfMemory(const absl::Status& s) { return s.code() == absl::StatusCode::kResourceExhausted; }

// A device's run of tiles, in passes planned from its free memory.
absl::Status RunDevice(const ScalarJob& job, const DeviceSpan& span, int64_t max_tiles,
                       cpu::ScalarQuantization* q) {
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
  const uint64_t per_tile = BytesPerTile(job, q->num_groups);
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
    const absl::Status status = RunPass(job, in, handle.get(), next * kRowTile, plan.front(), q);
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
                          cpu::ScalarQuantization* q) {
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
    threads.emplace_back([&, i] { status[i] = RunDevice(job, spans[i], max_tiles, q); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : status) RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

}  // namespace glvq::cuda
