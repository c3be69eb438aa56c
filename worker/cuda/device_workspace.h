// The device side of GLVQ learning for one span of column groups on one
// GPU (a batch, batch_runner.h): the span's weights and Hessian blocks,
// the work buffers, the per-group parameters, and the O(rows × width)
// steps of the learning loop as host calls (kernels of glvq_kernels.h,
// Gram products with cuBLAS). group_solver.h drives it; the d × d algebra
// stays on the host.
//
// Every call makes `device` current on the calling thread first; one
// workspace is used by one thread at a time. Buffers are group-major with
// row stride group_size (glvq_kernels.h); sizes in elements.
#pragma once

#include <cublas_v2.h>

#include <Eigen/Dense>
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cuda/device_array.h"
#include "worker/cuda/glvq_kernels.h"

namespace glvq::cuda {

struct SpanShape {
  int device = 0;
  int64_t rows = 0;
  int32_t group_size = 0;
  int32_t dim = 0;
  std::vector<int32_t> widths;  // [groups]: group_size, the last possibly less
  bool hessian = false;         // Hessian blocks and r = Δ H buffers
  int64_t weight_elements = 0;  // F32 weights held on the device (the span, or all)
  int64_t hessian_groups = 0;   // Hessian blocks held (the span's, or all)
};

// Per-group losses and gradients of an evaluation (active groups only).
struct GroupEvaluation {
  std::vector<double> loss;         // tr(Δ H Δᵀ) in units of x = w / s
  std::vector<double> dmu;          // ∂loss/∂µ (with the gradient)
  std::vector<Eigen::MatrixXd> dg;  // ∂loss/∂G, d × d (with the gradient)
};

class DeviceWorkspace {
 public:
  enum class Codes { kCurrent, kBest };
  enum class Operand { kY, kZ, kGradient };  // y, z of the last decode, ∂loss/∂ŷ

  // Device memory a workspace of `shape` allocates, in bytes.
  static uint64_t BytesNeeded(const SpanShape& shape);
  // Allocates; RESOURCE_EXHAUSTED when the device lacks the memory (checked
  // against its free memory first, then by the allocations themselves).
  static absl::StatusOr<std::unique_ptr<DeviceWorkspace>> Create(const SpanShape& shape);
  ~DeviceWorkspace();
  DeviceWorkspace(const DeviceWorkspace&) = delete;
  DeviceWorkspace& operator=(const DeviceWorkspace&) = delete;

  const SpanShape& shape() const { return shape_; }
  int32_t groups() const { return static_cast<int32_t>(shape_.widths.size()); }

  // Inputs. The weights: weight_elements F32 values, filled either by
  // UploadWeights (rows × `cols` columns from host memory with row stride
  // `host_ld`; the view is then those columns) or by a collective
  // (weight_storage()); the view says where the span's group 0 starts and
  // the row stride. The Hessian blocks: [groups]
  // col-major width × width blocks at stride group_size².
  float* weight_storage() { return weights_.get(); }
  double* hessian_storage() { return hblocks_.get(); }
  absl::Status UploadWeights(const float* host, int64_t host_ld, int64_t cols);
  void SetWeightView(int64_t offset, int64_t ldw) { view_ = {weights_.get() + offset, ldw}; }
  void SetHessianOffset(int64_t group) { hessian_offset_ = group; }  // block of the span's group 0
  // Blocks of the span's groups, or of every group of the task (≤ hessian_groups).
  absl::Status UploadHessian(std::span<const Eigen::MatrixXd> blocks);

  // Parameters. SetModel takes per group G (d × d; empty for an inactive
  // group), µ and whether it takes part; it computes G⁻¹, the tail block's
  // inverse and log1p(µ) on the host (as the CPU reference does).
  absl::Status SetBits(const std::vector<int32_t>& bits);
  absl::Status SetScales(const std::vector<float>& scales);
  absl::Status SetModel(const std::vector<Eigen::MatrixXd>& g, const std::vector<double>& mu,
                        const std::vector<uint8_t>& active);

  // Steps (per group, [groups] results; active groups only where noted).
  absl::StatusOr<std::vector<double>> MaxAbs();       // all groups, before SetScales
  absl::StatusOr<std::vector<double>> Kurtosis();     // active, needs the scales
  absl::Status Compand();                             // y = F_µ(w / s), active
  absl::StatusOr<std::vector<double>> MeanSquareY();  // mean(y²), active
  absl::Status Babai();                               // current codes from y, active
  absl::StatusOr<GroupEvaluation> Evaluate(Codes codes, bool gradient);  // active
  // Xᵀ Y per active group (width × width; other groups empty), from the
  // last Compand (kY) and Evaluate (kZ, kGradient).
  absl::StatusOr<std::vector<Eigen::MatrixXd>> Grams(Operand x, Operand y);
  absl::Status KeepImproved(const std::vector<uint8_t>& improved);  // current → best

  // SDBA figures: Σ_rows w² per column of the span, and per group the RTN
  // proxy tr(Δ H Δᵀ) at widths n−1, n, n+1 (all groups).
  absl::StatusOr<std::vector<double>> ColumnEnergies();
  absl::StatusOr<std::vector<std::array<double, 3>>> RtnProxies(int n);

  // The codes (one byte each) in the weights' layout: rows × span columns.
  absl::StatusOr<std::vector<uint8_t>> DownloadCodes(Codes codes);

  // Packs the best codes of every group (format v1) into a device buffer of
  // the span's stream bytes (the groups' PackedBytes, in order).
  absl::StatusOr<const DeviceArray<uint8_t>*> PackBest();

 private:
  explicit DeviceWorkspace(SpanShape shape);
  absl::Status Allocate();
  absl::Status Activate() const;
  GroupLayout Layout() const;
  GroupParams Params() const;
  int Chunks() const;
  absl::StatusOr<std::vector<Sum2>> ReducePartials(bool max);
  absl::Status MultiplyHessian(bool all_groups);  // r = Δ H (active groups unless all)
  double* OperandData(Operand o) const;

  SpanShape shape_;
  // Created by Create(), so Cublas() has loaded and (*Cublas()) is safe.
  cublasHandle_t cublas_ = nullptr;
  WeightView view_;
  int64_t hessian_offset_ = 0;
  std::vector<uint8_t> active_;  // host copy of the mask
  DeviceArray<float> weights_;
  DeviceArray<double> hblocks_, y_, delta_, yhat_, zd_, r_, gram_;
  DeviceArray<uint8_t> codes_, best_, active_d_, improved_d_, packed_;
  DeviceArray<int32_t> widths_d_, bits_d_;
  DeviceArray<float> scale_d_;
  DeviceArray<double> mu_d_, log1p_d_, gen_d_, inv_d_, tail_d_, mean_d_;
  DeviceArray<Sum2> partials_;
  std::vector<int32_t> bits_;
};

}  // namespace glvq::cuda
