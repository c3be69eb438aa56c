// DeviceWorkspace: allocation, inputs and per-group parameters. The steps
// of the learning loop are in workspace_steps.cc.
#include "worker/cuda/device_workspace.h"

#include <climits>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "worker/cuda/batch_plan.h"
#include "worker/cuda/cublas_api.h"
#include "worker/cuda/cublas_status.h"

namespace glvq::cuda {
namespace {

// Copies a d × d matrix (or its absence: zeros) into row-major storage.
void PutRowMajor(const Eigen::MatrixXd& m, int64_t d, double* out) {
  for (int64_t i = 0; i < d; ++i) {
    for (int64_t j = 0; j < d; ++j) out[i * d + j] = (i < m.rows() && j < m.cols()) ? m(i, j) : 0;
  }
}

}  // namespace

uint64_t DeviceWorkspace::BytesNeeded(const SpanShape& s) {
  const auto groups = static_cast<uint64_t>(s.widths.size());
  const auto d = static_cast<uint64_t>(s.dim);
  const uint64_t e = groups * static_cast<uint64_t>(SlabElements(s.rows, s.group_size));
  const uint64_t block = static_cast<uint64_t>(BlockStride(s.group_size));
  const uint64_t chunks = static_cast<uint64_t>(ReduceChunks(s.rows, s.group_size));
  uint64_t bytes = static_cast<uint64_t>(s.weight_elements) * sizeof(float);
  bytes += e * (4 * sizeof(double) + 3);               // y, Δ, ŷ, z; two code sets, packed
  bytes += groups * block * sizeof(double);            // Gram products
  bytes += groups * (3 * d * d + 4) * sizeof(double);  // G, G⁻¹, tail⁻¹, µ, log1p µ, mean
  bytes += groups * (chunks * sizeof(Sum2) + 16);      // partials, widths, bits, scale, masks
  if (s.hessian) {
    bytes += e * sizeof(double);  // r = Δ H
    bytes += static_cast<uint64_t>(s.hessian_groups) * block * sizeof(double);
  }
  return bytes;
}

absl::StatusOr<std::unique_ptr<DeviceWorkspace>> DeviceWorkspace::Create(const SpanShape& shape) {
  if (shape.rows > INT_MAX || shape.dim < 1 || shape.dim > 32 || shape.widths.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("a CUDA span of ", shape.widths.size(),
                                                   " groups of ", shape.rows,
                                                   " rows, d = ", shape.dim, " is not supported"));
  }
  std::unique_ptr<DeviceWorkspace> ws(new DeviceWorkspace(shape));
  RETURN_IF_ERROR(ws->Activate());
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  const uint64_t need = BytesNeeded(shape);
  if (need + kDeviceHeadroomBytes > free_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "GLVQ on CUDA device ", shape.device, " needs ", need, " bytes for ", shape.widths.size(),
        " groups of ", shape.rows, " rows; ", free_bytes, " of ", total_bytes, " are free"));
  }
  RETURN_IF_ERROR(ws->Allocate());
  ASSIGN_OR_RETURN(const CublasApi* cublas, Cublas());
  CUBLAS_RETURN_IF_ERROR(cublas->create(&ws->cublas_));
  return ws;
}

DeviceWorkspace::DeviceWorkspace(SpanShape shape) : shape_(std::move(shape)) {}

DeviceWorkspace::~DeviceWorkspace() {
  if (cublas_ != nullptr && Activate().ok()) (*Cublas())->destroy(cublas_);
}

absl::Status DeviceWorkspace::Activate() const {
  CUDA_RETURN_IF_ERROR(cudaSetDevice(shape_.device));
  return absl::OkStatus();
}

absl::Status DeviceWorkspace::Allocate() {
  const size_t groups = shape_.widths.size();
  const auto block = static_cast<size_t>(BlockStride(shape_.group_size));
  const size_t d2 = static_cast<size_t>(shape_.dim) * static_cast<size_t>(shape_.dim);
  const size_t e = groups * static_cast<size_t>(SlabElements(shape_.rows, shape_.group_size));
  RETURN_IF_ERROR(weights_.Allocate(static_cast<size_t>(shape_.weight_elements)));
  for (DeviceArray<double>* a : {&y_, &delta_, &yhat_, &zd_}) RETURN_IF_ERROR(a->Allocate(e));
  RETURN_IF_ERROR(r_.Allocate(shape_.hessian ? e : 0));
  RETURN_IF_ERROR(
      hblocks_.Allocate(shape_.hessian ? static_cast<size_t>(shape_.hessian_groups) * block : 0));
  RETURN_IF_ERROR(gram_.Allocate(groups * block));
  for (DeviceArray<uint8_t>* a : {&codes_, &best_, &packed_}) RETURN_IF_ERROR(a->Allocate(e));
  for (DeviceArray<uint8_t>* a : {&active_d_, &improved_d_}) RETURN_IF_ERROR(a->Allocate(groups));
  for (DeviceArray<int32_t>* a : {&widths_d_, &bits_d_}) RETURN_IF_ERROR(a->Allocate(groups));
  RETURN_IF_ERROR(scale_d_.Allocate(groups));
  for (DeviceArray<double>* a : {&mu_d_, &log1p_d_, &mean_d_}) RETURN_IF_ERROR(a->Allocate(groups));
  for (DeviceArray<double>* a : {&gen_d_, &inv_d_, &tail_d_}) {
    RETURN_IF_ERROR(a->Allocate(groups * d2));
  }
  RETURN_IF_ERROR(partials_.Allocate(groups * static_cast<size_t>(Chunks())));
  RETURN_IF_ERROR(widths_d_.Upload(shape_.widths));
  active_.assign(groups, 1);
  RETURN_IF_ERROR(active_d_.Upload(active_));
  view_ = {weights_.get(), 0};
  return absl::OkStatus();
}

absl::Status DeviceWorkspace::UploadWeights(const float* host, int64_t host_ld, int64_t cols) {
  RETURN_IF_ERROR(Activate());
  if (cols * shape_.rows > shape_.weight_elements) {
    return absl::InternalError("UploadWeights: more columns than the weight storage holds");
  }
  const size_t row_bytes = static_cast<size_t>(cols) * sizeof(float);
  CUDA_RETURN_IF_ERROR(cudaMemcpy2D(weights_.get(), row_bytes, host,
                                    static_cast<size_t>(host_ld) * sizeof(float), row_bytes,
                                    static_cast<size_t>(shape_.rows), cudaMemcpyHostToDevice));
  SetWeightView(0, cols);
  return absl::OkStatus();
}

absl::Status DeviceWorkspace::UploadHessian(std::span<const Eigen::MatrixXd> blocks) {
  RETURN_IF_ERROR(Activate());
  const auto block = static_cast<size_t>(BlockStride(shape_.group_size));
  if (!shape_.hessian || blocks.size() < shape_.widths.size() ||
      static_cast<int64_t>(blocks.size()) > shape_.hessian_groups) {
    return absl::InternalError("UploadHessian: blocks do not match the span");
  }
  std::vector<double> host(blocks.size() * block, 0.0);
  for (size_t g = 0; g < blocks.size(); ++g) {  // col-major, leading dimension = width
    std::copy(blocks[g].data(), blocks[g].data() + blocks[g].size(), host.data() + g * block);
  }
  RETURN_IF_ERROR(hblocks_.Upload(host));
  SetHessianOffset(0);
  return absl::OkStatus();
}

absl::Status DeviceWorkspace::SetBits(const std::vector<int32_t>& bits) {
  RETURN_IF_ERROR(Activate());
  bits_ = bits;
  return bits_d_.Upload(bits_);
}

absl::Status DeviceWorkspace::SetScales(const std::vector<float>& scales) {
  RETURN_IF_ERROR(Activate());
  return scale_d_.Upload(scales);
}

absl::Status DeviceWorkspace::SetModel(const std::vector<Eigen::MatrixXd>& g,
                                       const std::vector<double>& mu,
                                       const std::vector<uint8_t>& active) {
  RETURN_IF_ERROR(Activate());
  const int64_t d = shape_.dim;
  const size_t groups = shape_.widths.size(), d2 = static_cast<size_t>(d * d);
  std::vector<double> gen(groups * d2), inv(groups * d2), tail(groups * d2), lg(groups);
  for (size_t i = 0; i < groups; ++i) {
    lg[i] = std::log1p(mu[i]);
    if (g[i].size() == 0) continue;
    const int64_t t = shape_.widths[i] % d;
    PutRowMajor(g[i], d, gen.data() + i * d2);
    PutRowMajor(g[i].inverse(), d, inv.data() + i * d2);
    if (t > 0)
      PutRowMajor(Eigen::MatrixXd(g[i].topLeftCorner(t, t)).inverse(), d, tail.data() + i * d2);
  }
  active_ = active;
  RETURN_IF_ERROR(gen_d_.Upload(gen));
  RETURN_IF_ERROR(inv_d_.Upload(inv));
  RETURN_IF_ERROR(tail_d_.Upload(tail));
  RETURN_IF_ERROR(mu_d_.Upload(mu));
  RETURN_IF_ERROR(log1p_d_.Upload(lg));
  return active_d_.Upload(active_);
}

GroupLayout DeviceWorkspace::Layout() const {
  return {groups(), shape_.rows, shape_.group_size, shape_.dim,
          SlabElements(shape_.rows, shape_.group_size)};
}

GroupParams DeviceWorkspace::Params() const {
  return {widths_d_.get(), bits_d_.get(), scale_d_.get(), mu_d_.get(),    log1p_d_.get(),
          gen_d_.get(),    inv_d_.get(),  tail_d_.get(),  active_d_.get()};
}

int DeviceWorkspace::Chunks() const { return ReduceChunks(shape_.rows, shape_.group_size); }

}  // namespace glvq::cuda
