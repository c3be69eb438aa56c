#include "common/synthetic/example_model.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/base/random.h"
#include "common/base/status_macros.h"
#include "common/safetensors/writer.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace fs = std::filesystem;
namespace {

std::vector<double> LogNormalScales(Rng& rng, int64_t n, double sigma) {
  std::vector<double> s(static_cast<size_t>(n));
  for (double& v : s) v = std::exp(sigma * rng.Normal());
  return s;
}

// A tensor in its final dtype, owning its bytes.
struct OwnedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

absl::StatusOr<OwnedTensor> Encode(std::string name, std::vector<int64_t> shape,
                                   const std::vector<float>& values, DType dtype) {
  OwnedTensor t{std::move(name), std::move(shape), {}};
  t.bytes.resize(values.size() * DTypeSize(dtype));
  RETURN_IF_ERROR(ConvertFromF32(values, dtype, t.bytes));
  return t;
}

std::vector<float> NormWeight(Rng& rng, int n) {
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = static_cast<float>(1.0 + 0.1 * rng.Normal());
  return w;
}

std::string ConfigJson(const ExampleModelOptions& o) {
  nlohmann::ordered_json c;
  c["architectures"] = {"LlamaForCausalLM"};
  c["model_type"] = "llama";
  c["hidden_size"] = o.hidden;
  c["intermediate_size"] = o.intermediate;
  c["num_hidden_layers"] = o.layers;
  c["num_attention_heads"] = o.heads;
  c["num_key_value_heads"] = o.kv_heads;
  c["vocab_size"] = o.vocab;
  c["max_position_embeddings"] = 512;
  c["rms_norm_eps"] = 1e-5;
  c["rope_theta"] = 10000.0;
  c["hidden_act"] = "silu";
  c["tie_word_embeddings"] = true;
  c["torch_dtype"] = o.dtype == DType::kF32 ? "float32"
                     : o.dtype == DType::kF16 ? "float16" : "bfloat16";
  c["bos_token_id"] = 1;
  c["eos_token_id"] = 2;
  c["glvq_synthetic"] = absl::StrCat("example model, seed ", o.seed);
  return c.dump(2) + "\n";
}

absl::Status CheckOptions(const ExampleModelOptions& o) {
  if (o.hidden <= 0 || o.intermediate <= 0 || o.layers <= 0 || o.vocab <= 0 ||
      o.heads <= 0 || o.kv_heads <= 0) {
    return absl::InvalidArgumentError("example model: all sizes must be positive");
  }
  if (o.hidden % o.heads != 0 || o.heads % o.kv_heads != 0) {
    return absl::InvalidArgumentError(
        "example model: hidden must be a multiple of heads, heads of kv_heads");
  }
  if (!IsFloatDType(o.dtype)) {
    return absl::InvalidArgumentError("example model: dtype must be F32, F16 or BF16");
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<float> MakeLlmLikeWeight(const LlmLikeWeightOptions& o) {
  Rng rng(o.seed);
  const std::vector<double> row_scale = LogNormalScales(rng, o.rows, o.row_scale_sigma);
  std::vector<double> col_scale = LogNormalScales(rng, o.cols, o.col_scale_sigma);
  const auto outliers = static_cast<int64_t>(std::ceil(o.outlier_fraction * static_cast<double>(o.cols)));
  const double log_span = std::log(o.outlier_gain_max / o.outlier_gain_min);
  for (int64_t i = 0; i < outliers; ++i) {
    const uint64_t c = rng.Below(static_cast<uint64_t>(o.cols));
    col_scale[c] *= o.outlier_gain_min * std::exp(log_span * rng.Uniform());
  }
  const double base = 1.0 / std::sqrt(static_cast<double>(o.cols));
  std::vector<float> w(static_cast<size_t>(o.rows * o.cols));
  for (int64_t r = 0; r < o.rows; ++r) {
    for (int64_t c = 0; c < o.cols; ++c) {
      const double v = rng.StudentT(o.student_nu) * base * row_scale[r] * col_scale[c];
      w[static_cast<size_t>(r * o.cols + c)] = static_cast<float>(v);
    }
  }
  return w;
}

absl::Status WriteExampleModel(const fs::path& dir, const ExampleModelOptions& o) {
  RETURN_IF_ERROR(CheckOptions(o));
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir.string(), ": already exists; choose a new directory"));
  }
  Rng rng(o.seed);
  std::vector<OwnedTensor> tensors;
  auto add = [&](std::string name, std::vector<int64_t> shape,
                 const std::vector<float>& values) -> absl::Status {
    ASSIGN_OR_RETURN(OwnedTensor t, Encode(std::move(name), std::move(shape), values, o.dtype));
    tensors.push_back(std::move(t));
    return absl::OkStatus();
  };
  auto add_linear = [&](const std::string& name, int64_t rows, int64_t cols) {
    LlmLikeWeightOptions w;
    w.rows = rows;
    w.cols = cols;
    w.seed = rng.NextU64();
    return add(name, {rows, cols}, MakeLlmLikeWeight(w));
  };
  const int64_t head_dim = o.hidden / o.heads;
  const int64_t kv_dim = head_dim * o.kv_heads;
  RETURN_IF_ERROR(add_linear("model.embed_tokens.weight", o.vocab, o.hidden));
  for (int l = 0; l < o.layers; ++l) {
    const std::string p = absl::StrCat("model.layers.", l, ".");
    RETURN_IF_ERROR(add(p + "input_layernorm.weight", {o.hidden}, NormWeight(rng, o.hidden)));
    RETURN_IF_ERROR(add(p + "post_attention_layernorm.weight", {o.hidden}, NormWeight(rng, o.hidden)));
    RETURN_IF_ERROR(add_linear(p + "self_attn.q_proj.weight", o.hidden, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "self_attn.k_proj.weight", kv_dim, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "self_attn.v_proj.weight", kv_dim, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "self_attn.o_proj.weight", o.hidden, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "mlp.gate_proj.weight", o.intermediate, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "mlp.up_proj.weight", o.intermediate, o.hidden));
    RETURN_IF_ERROR(add_linear(p + "mlp.down_proj.weight", o.hidden, o.intermediate));
  }
  RETURN_IF_ERROR(add("model.norm.weight", {o.hidden}, NormWeight(rng, o.hidden)));

  std::vector<TensorToWrite> views;
  for (const OwnedTensor& t : tensors) views.push_back({t.name, o.dtype, t.shape, t.bytes});
  if (!fs::create_directories(dir, ec) || ec) {
    return absl::PermissionDeniedError(
        absl::StrCat(dir.string(), ": cannot create directory: ", ec.message()));
  }
  RETURN_IF_ERROR(AtomicWriteString(dir / "config.json", ConfigJson(o)));
  return WriteSafetensors(dir / "model.safetensors", views,
                          {{"format", "pt"}, {"glvq_synthetic", "example model"}});
}

}  // namespace glvq
