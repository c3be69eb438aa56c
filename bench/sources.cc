#include "bench/sources.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/safetensors/reader.h"
#include "common/synthetic/example_model.h"

namespace glvq::bench {
namespace {

Layer Iid(const std::string& source, int64_t rows, int64_t cols, uint64_t seed, bool student) {
  Layer l{source, absl::StrCat(source, ".", rows, "x", cols), rows, cols, {}, {}};
  Rng rng(seed);
  l.w.resize(static_cast<size_t>(rows * cols));
  for (float& v : l.w) v = static_cast<float>(student ? rng.StudentT(4) : rng.Normal());
  return l;
}

Layer LlmLike(const std::string& name, int64_t rows, int64_t cols, uint64_t seed) {
  LlmLikeWeightOptions o;
  o.rows = rows;
  o.cols = cols;
  o.seed = seed;
  o.outlier_gain_min = 10.0;
  o.outlier_gain_max = 100.0;
  Layer l{"llm_like", name, rows, cols, MakeLlmLikeWeight(o), SyntheticHessian(cols, seed + 1)};
  return l;
}

absl::StatusOr<std::vector<Layer>> FixtureLayers(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(SafetensorsModel model, SafetensorsModel::Open(dir / "stories260K"));
  std::vector<Layer> layers;
  for (const std::string& name : model.tensor_names()) {
    if (name.find("_proj.weight") == std::string::npos) continue;
    ASSIGN_OR_RETURN(TensorView v, model.Get(name));
    Layer l{"stories260k", name, v.shape[0], v.shape[1], {}, {}};
    l.w.resize(static_cast<size_t>(v.NumElements()));
    RETURN_IF_ERROR(ConvertToF32(v.dtype, v.data, l.w));
    layers.push_back(std::move(l));
  }
  return layers;
}

}  // namespace

std::vector<double> SyntheticHessian(int64_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<double> scale(static_cast<size_t>(n));
  for (double& s : scale) s = std::exp(0.5 * rng.Normal());
  for (int64_t i = 0; i < std::max<int64_t>(1, n / 100); ++i) {
    scale[rng.Below(static_cast<uint64_t>(n))] *= 10.0 * std::pow(10.0, rng.Uniform());
  }
  const int64_t samples = 4 * n;
  std::vector<double> h(static_cast<size_t>(n * n), 0.0), x(static_cast<size_t>(n));
  const double rho = 0.6, innov = std::sqrt(1 - rho * rho);
  for (int64_t s = 0; s < samples; ++s) {
    double prev = rng.Normal();
    for (int64_t i = 0; i < n; ++i) {
      prev = rho * prev + innov * rng.Normal();
      x[i] = prev * scale[i];
    }
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j <= i; ++j) h[i * n + j] += x[i] * x[j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j <= i; ++j) {
      h[i * n + j] /= static_cast<double>(samples);
      h[j * n + i] = h[i * n + j];
    }
  }
  return h;
}

absl::StatusOr<std::vector<Layer>> LoadSource(const std::string& source,
                                              const std::filesystem::path& fixtures_dir) {
  if (source == "gaussian") return std::vector<Layer>{Iid(source, 256, 1024, 1, false)};
  if (source == "student_t") return std::vector<Layer>{Iid(source, 256, 1024, 2, true)};
  if (source == "llm_like") {
    return std::vector<Layer>{LlmLike("llm_like.q_proj", 256, 512, 11),
                              LlmLike("llm_like.up_proj", 688, 256, 12),
                              LlmLike("llm_like.down_proj", 256, 688, 13)};
  }
  if (source == "stories260k") return FixtureLayers(fixtures_dir);
  return absl::InvalidArgumentError(absl::StrCat("unknown source '", source, "'"));
}

}  // namespace glvq::bench
