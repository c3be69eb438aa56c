// DeviceWorkspace: the steps of the learning loop and the packed output.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/packed/bitpack.h"
#include "worker/cuda/codec_kernels.h"
#include "worker/cuda/cublas_api.h"
#include "worker/cuda/cublas_status.h"
#include "worker/cuda/device_workspace.h"

namespace glvq::cuda {
namespace {

using Eigen::MatrixXd;

// ∂loss/∂G from the Gram of ∂loss/∂ŷ with z: the sum of its diagonal d-blocks,
// a short last block into G's leading corner (as the CPU's Evaluate).
MatrixXd SumDiagonalBlocks(const MatrixXd& gram, int64_t d) {
  const int64_t w = gram.rows(), nb = w / d, t = w % d;
  MatrixXd out = MatrixXd::Zero(d, d);
  for (int64_t j = 0; j < nb; ++j) out += gram.block(j * d, j * d, d, d);
  if (t > 0) out.topLeftCorner(t, t) += gram.block(nb * d, nb * d, t, t);
  return out;
}

}  // namespace

absl::StatusOr<std::vector<Sum2>> DeviceWorkspace::ReducePartials(bool max) {
  const size_t groups = shape_.widths.size(), chunks = static_cast<size_t>(Chunks());
  std::vector<Sum2> host(groups * chunks);
  RETURN_IF_ERROR(partials_.Download(host));
  std::vector<Sum2> out(groups, Sum2{0.0, 0.0});
  for (size_t g = 0; g < groups; ++g) {
    for (size_t k = 0; k < chunks; ++k) {
      const Sum2& v = host[g * chunks + k];
      out[g].a = max ? std::max(out[g].a, v.a) : out[g].a + v.a;
      out[g].b = max ? std::max(out[g].b, v.b) : out[g].b + v.b;
    }
  }
  return out;
}

absl::StatusOr<std::vector<double>> DeviceWorkspace::MaxAbs() {
  RETURN_IF_ERROR(Activate());
  CUDA_RETURN_IF_ERROR(LaunchGroupMaxAbs(Layout(), Params(), view_, Chunks(), partials_.get()));
  ASSIGN_OR_RETURN(const std::vector<Sum2> m, ReducePartials(/*max=*/true));
  std::vector<double> out(m.size());
  for (size_t g = 0; g < m.size(); ++g) out[g] = m[g].a;
  return out;
}

absl::StatusOr<std::vector<double>> DeviceWorkspace::Kurtosis() {
  RETURN_IF_ERROR(Activate());
  const size_t groups = shape_.widths.size();
  CUDA_RETURN_IF_ERROR(
      LaunchGroupMoments(Layout(), Params(), view_, nullptr, Chunks(), partials_.get()));
  ASSIGN_OR_RETURN(const std::vector<Sum2> s1, ReducePartials(false));
  std::vector<double> mean(groups), n(groups), out(groups, 3.0);
  for (size_t g = 0; g < groups; ++g) {
    n[g] = static_cast<double>(shape_.rows * shape_.widths[g]);
    mean[g] = s1[g].a / n[g];
  }
  RETURN_IF_ERROR(mean_d_.Upload(mean));
  CUDA_RETURN_IF_ERROR(
      LaunchGroupMoments(Layout(), Params(), view_, mean_d_.get(), Chunks(), partials_.get()));
  ASSIGN_OR_RETURN(const std::vector<Sum2> s24, ReducePartials(false));
  for (size_t g = 0; g < groups; ++g) {  // the CPU's SampleKurtosis
    const double m2 = s24[g].a / n[g];
    if (m2 > 0) out[g] = (s24[g].b / n[g]) / (m2 * m2);
  }
  return out;
}

absl::Status DeviceWorkspace::Compand() {
  RETURN_IF_ERROR(Activate());
  CUDA_RETURN_IF_ERROR(LaunchCompand(Layout(), Params(), view_, y_.get()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> DeviceWorkspace::MeanSquareY() {
  RETURN_IF_ERROR(Activate());
  CUDA_RETURN_IF_ERROR(
      LaunchGroupSumSquares(Layout(), Params(), y_.get(), Chunks(), partials_.get()));
  ASSIGN_OR_RETURN(const std::vector<Sum2> s, ReducePartials(false));
  std::vector<double> out(s.size());
  for (size_t g = 0; g < s.size(); ++g) {
    out[g] = s[g].a / static_cast<double>(shape_.rows * shape_.widths[g]);
  }
  return out;
}

absl::Status DeviceWorkspace::Babai() {
  RETURN_IF_ERROR(Activate());
  CUDA_RETURN_IF_ERROR(LaunchBabai(Layout(), Params(), y_.get(), codes_.get()));
  return absl::OkStatus();
}

// r_g = Δ_g H_g: in column-major terms Rᵀ (width × rows, ld group_size) =
// Hᵀ Δᵀ with H_g col-major (ld width).
absl::Status DeviceWorkspace::MultiplyHessian(bool all_groups) {
  const int64_t gs = shape_.group_size, slab = SlabElements(shape_.rows, shape_.group_size);
  const int64_t block = BlockStride(shape_.group_size);
  const double one = 1.0, zero = 0.0;
  for (int32_t g = 0; g < groups(); ++g) {
    if (!all_groups && active_[g] == 0) continue;
    const int w = shape_.widths[g];
    const double* h = hblocks_.get() + (hessian_offset_ + g) * block;
    CUBLAS_RETURN_IF_ERROR((*Cublas())->dgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, w,
                                       static_cast<int>(shape_.rows), w, &one, h, w,
                                       delta_.get() + g * slab, static_cast<int>(gs), &zero,
                                       r_.get() + g * slab, static_cast<int>(gs)));
  }
  return absl::OkStatus();
}

absl::StatusOr<GroupEvaluation> DeviceWorkspace::Evaluate(Codes codes, bool gradient) {
  RETURN_IF_ERROR(Activate());
  const uint8_t* c = codes == Codes::kBest ? best_.get() : codes_.get();
  CUDA_RETURN_IF_ERROR(
      LaunchDecodeDelta(Layout(), Params(), view_, c, delta_.get(), yhat_.get(), zd_.get()));
  const double* r = delta_.get();
  if (shape_.hessian) {
    RETURN_IF_ERROR(MultiplyHessian(/*all_groups=*/false));
    r = r_.get();
  }
  CUDA_RETURN_IF_ERROR(LaunchLossTerms(Layout(), Params(), r, delta_.get(), yhat_.get(), gradient,
                                       Chunks(), partials_.get()));
  ASSIGN_OR_RETURN(const std::vector<Sum2> sums, ReducePartials(false));
  GroupEvaluation e;
  for (const Sum2& s : sums) {
    e.loss.push_back(s.a);
    e.dmu.push_back(s.b);
  }
  if (!gradient) return e;
  ASSIGN_OR_RETURN(const std::vector<MatrixXd> grams, Grams(Operand::kGradient, Operand::kZ));
  e.dg.resize(grams.size());
  for (size_t g = 0; g < grams.size(); ++g) {
    if (active_[g] != 0) e.dg[g] = SumDiagonalBlocks(grams[g], shape_.dim);
  }
  return e;
}

double* DeviceWorkspace::OperandData(Operand o) const {
  return o == Operand::kY ? y_.get() : (o == Operand::kZ ? zd_.get() : yhat_.get());
}

// Xᵀ Y per group: column-major C (width × width, ld width) = P Qᵀ with P, Q
// the col-major views (width × rows, ld group_size) of X and Y.
absl::StatusOr<std::vector<MatrixXd>> DeviceWorkspace::Grams(Operand x, Operand y) {
  RETURN_IF_ERROR(Activate());
  const int64_t gs = shape_.group_size, slab = SlabElements(shape_.rows, shape_.group_size);
  const int64_t block = BlockStride(shape_.group_size);
  const double one = 1.0, zero = 0.0;
  for (int32_t g = 0; g < groups(); ++g) {
    if (active_[g] == 0) continue;
    const int w = shape_.widths[g];
    CUBLAS_RETURN_IF_ERROR(
        (*Cublas())->dgemm(cublas_, CUBLAS_OP_N, CUBLAS_OP_T, w, w, static_cast<int>(shape_.rows), &one,
                    OperandData(x) + g * slab, static_cast<int>(gs), OperandData(y) + g * slab,
                    static_cast<int>(gs), &zero, gram_.get() + g * block, w));
  }
  std::vector<double> host(gram_.size());
  RETURN_IF_ERROR(gram_.Download(host));
  std::vector<MatrixXd> out(shape_.widths.size());
  for (int32_t g = 0; g < groups(); ++g) {
    if (active_[g] == 0) continue;
    const int64_t w = shape_.widths[g];
    out[g] = Eigen::Map<const MatrixXd>(host.data() + g * block, w, w);
  }
  return out;
}

absl::Status DeviceWorkspace::KeepImproved(const std::vector<uint8_t>& improved) {
  if (std::none_of(improved.begin(), improved.end(), [](uint8_t v) { return v != 0; })) {
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Activate());
  RETURN_IF_ERROR(improved_d_.Upload(improved));
  CUDA_RETURN_IF_ERROR(
      LaunchCopyGroupCodes(Layout(), improved_d_.get(), codes_.get(), best_.get()));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<uint8_t>> DeviceWorkspace::DownloadCodes(Codes codes) {
  RETURN_IF_ERROR(Activate());
  std::vector<uint8_t> slabs(codes_.size());
  RETURN_IF_ERROR((codes == Codes::kBest ? best_ : codes_).Download(slabs));
  const int64_t gs = shape_.group_size, slab = SlabElements(shape_.rows, shape_.group_size);
  int64_t cols = 0;
  for (int32_t w : shape_.widths) cols += w;
  std::vector<uint8_t> out(static_cast<size_t>(shape_.rows * cols));
  for (int32_t g = 0; g < groups(); ++g) {
    for (int64_t r = 0; r < shape_.rows; ++r) {
      std::copy_n(slabs.begin() + g * slab + r * gs, shape_.widths[g],
                  out.begin() + r * cols + g * gs);
    }
  }
  return out;
}

absl::StatusOr<const DeviceArray<uint8_t>*> DeviceWorkspace::PackBest() {
  RETURN_IF_ERROR(Activate());
  std::vector<PackGroup> desc(shape_.widths.size());
  uint64_t offset = 0, max_bytes = 0;
  const auto slab = static_cast<uint64_t>(SlabElements(shape_.rows, shape_.group_size));
  for (size_t g = 0; g < desc.size(); ++g) {
    const uint64_t n = static_cast<uint64_t>(shape_.rows) * shape_.widths[g];
    const uint64_t bytes = PackedBytes(n, bits_[g]);
    desc[g] = {g * slab,
               offset,
               static_cast<uint32_t>(shape_.group_size),
               static_cast<uint32_t>(shape_.widths[g]),
               static_cast<uint32_t>(bits_[g]),
               0};
    offset += bytes;
    max_bytes = std::max(max_bytes, bytes);
  }
  DeviceArray<PackGroup> d_groups;
  RETURN_IF_ERROR(d_groups.Allocate(desc.size()));
  RETURN_IF_ERROR(d_groups.Upload(desc));
  CUDA_RETURN_IF_ERROR(LaunchPackCodes(d_groups.get(), groups(), shape_.rows, max_bytes,
                                       best_.get(), packed_.get()));
  CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
  return &packed_;
}

}  // namespace glvq::cuda
