// Loading Llama weights by their Hugging Face names from an original
// checkpoint or a packed model, checking every shape against config.json.
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/packed/packed_model.h"
#include "common/safetensors/reader.h"
#include "common/tensor/dtype.h"
#include "model/llama.h"

namespace glvq::model {
namespace {

// Where weights come from: their shapes (nullptr if absent) and their F32
// values. `where` names the model in messages.
struct TensorSource {
  std::string where;
  std::function<const std::vector<int64_t>*(const std::string&)> shape;
  std::function<absl::StatusOr<std::vector<float>>(const std::string&)> values;
};

absl::StatusOr<std::vector<float>> LoadChecked(const TensorSource& src, const std::string& name,
                                               const std::vector<int64_t>& expected) {
  const std::vector<int64_t>* shape = src.shape(name);
  if (shape == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.where, ": missing tensor ", name, " (a Llama checkpoint has it)"));
  }
  if (*shape != expected) {
    return absl::InvalidArgumentError(
        absl::StrCat(src.where, ": tensor ", name, " has shape ", ShapeToString(*shape),
                     ", but config.json implies ", ShapeToString(expected)));
  }
  ASSIGN_OR_RETURN(std::vector<float> values, src.values(name));
  for (const float v : values) {
    if (!std::isfinite(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat(src.where, ": tensor ", name, " holds NaN or Inf"));
    }
  }
  return values;
}

absl::StatusOr<RowMatrix> LoadMatrix(const TensorSource& src, const std::string& name, int64_t rows,
                                     int64_t cols) {
  ASSIGN_OR_RETURN(std::vector<float> v, LoadChecked(src, name, {rows, cols}));
  return RowMatrix(Eigen::Map<const RowMatrix>(v.data(), rows, cols));
}

absl::StatusOr<Eigen::VectorXf> LoadVector(const TensorSource& src, const std::string& name,
                                           int64_t n) {
  ASSIGN_OR_RETURN(std::vector<float> v, LoadChecked(src, name, {n}));
  return Eigen::VectorXf(Eigen::Map<const Eigen::VectorXf>(v.data(), n));
}

// The family's extras (LlamaConfig's switches): biases and q/k norms.
absl::Status LoadOptional(const LlamaConfig& c, const TensorSource& src, const std::string& p,
                          LlamaLayerWeights& w) {
  const std::string attn = p + "self_attn.", mlp = p + "mlp.";
  if (c.qkv_bias) {
    ASSIGN_OR_RETURN(w.q_bias, LoadVector(src, attn + "q_proj.bias", c.q_dim()));
    ASSIGN_OR_RETURN(w.k_bias, LoadVector(src, attn + "k_proj.bias", c.kv_dim()));
    ASSIGN_OR_RETURN(w.v_bias, LoadVector(src, attn + "v_proj.bias", c.kv_dim()));
  }
  if (c.o_bias) {
    ASSIGN_OR_RETURN(w.o_bias, LoadVector(src, attn + "o_proj.bias", c.hidden_size));
  }
  if (c.mlp_bias) {
    ASSIGN_OR_RETURN(w.gate_bias, LoadVector(src, mlp + "gate_proj.bias", c.intermediate_size));
    ASSIGN_OR_RETURN(w.up_bias, LoadVector(src, mlp + "up_proj.bias", c.intermediate_size));
    ASSIGN_OR_RETURN(w.down_bias, LoadVector(src, mlp + "down_proj.bias", c.hidden_size));
  }
  if (c.qk_norm) {
    ASSIGN_OR_RETURN(w.q_norm, LoadVector(src, attn + "q_norm.weight", c.head_dim));
    ASSIGN_OR_RETURN(w.k_norm, LoadVector(src, attn + "k_norm.weight", c.head_dim));
  }
  return absl::OkStatus();
}

absl::StatusOr<LlamaLayerWeights> LoadLayer(const LlamaConfig& c, const TensorSource& src,
                                            int64_t layer) {
  const std::string p = absl::StrCat("model.layers.", layer, ".");
  const std::string attn = p + "self_attn.", mlp = p + "mlp.";
  LlamaLayerWeights w;
  ASSIGN_OR_RETURN(w.q_proj, LoadMatrix(src, attn + "q_proj.weight", c.q_dim(), c.hidden_size));
  ASSIGN_OR_RETURN(w.k_proj, LoadMatrix(src, attn + "k_proj.weight", c.kv_dim(), c.hidden_size));
  ASSIGN_OR_RETURN(w.v_proj, LoadMatrix(src, attn + "v_proj.weight", c.kv_dim(), c.hidden_size));
  ASSIGN_OR_RETURN(w.o_proj, LoadMatrix(src, attn + "o_proj.weight", c.hidden_size, c.q_dim()));
  const int64_t h = c.hidden_size, m = c.intermediate_size;
  ASSIGN_OR_RETURN(w.gate_proj, LoadMatrix(src, mlp + "gate_proj.weight", m, h));
  ASSIGN_OR_RETURN(w.up_proj, LoadMatrix(src, mlp + "up_proj.weight", m, h));
  ASSIGN_OR_RETURN(w.down_proj, LoadMatrix(src, mlp + "down_proj.weight", h, m));
  ASSIGN_OR_RETURN(w.input_layernorm, LoadVector(src, p + "input_layernorm.weight", h));
  ASSIGN_OR_RETURN(w.post_attention_layernorm,
                   LoadVector(src, p + "post_attention_layernorm.weight", h));
  RETURN_IF_ERROR(LoadOptional(c, src, p, w));
  return w;
}

absl::StatusOr<LlamaModel> LoadFrom(const LlamaConfig& c, const TensorSource& src) {
  LlamaWeights w;
  ASSIGN_OR_RETURN(w.embed_tokens,
                   LoadMatrix(src, "model.embed_tokens.weight", c.vocab_size, c.hidden_size));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    ASSIGN_OR_RETURN(LlamaLayerWeights layer, LoadLayer(c, src, l));
    w.layers.push_back(std::move(layer));
  }
  ASSIGN_OR_RETURN(w.norm, LoadVector(src, "model.norm.weight", c.hidden_size));
  // Tied models use the embedding, as HF does even if lm_head.weight exists.
  if (!c.tie_word_embeddings) {
    ASSIGN_OR_RETURN(w.lm_head, LoadMatrix(src, "lm_head.weight", c.vocab_size, c.hidden_size));
  }
  return LlamaModel::FromWeights(c, std::move(w));
}

absl::Status CheckShape(const char* name, Eigen::Index rows, Eigen::Index cols, int64_t want_rows,
                        int64_t want_cols) {
  if (rows == want_rows && cols == want_cols) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(name, " is ", rows, "x", cols, ", expected ", want_rows, "x", want_cols));
}

absl::Status CheckLayer(const LlamaConfig& c, const LlamaLayerWeights& w) {
  const int64_t h = c.hidden_size, m = c.intermediate_size;
  RETURN_IF_ERROR(CheckShape("q_proj", w.q_proj.rows(), w.q_proj.cols(), c.q_dim(), h));
  RETURN_IF_ERROR(CheckShape("k_proj", w.k_proj.rows(), w.k_proj.cols(), c.kv_dim(), h));
  RETURN_IF_ERROR(CheckShape("v_proj", w.v_proj.rows(), w.v_proj.cols(), c.kv_dim(), h));
  RETURN_IF_ERROR(CheckShape("o_proj", w.o_proj.rows(), w.o_proj.cols(), h, c.q_dim()));
  RETURN_IF_ERROR(CheckShape("gate_proj", w.gate_proj.rows(), w.gate_proj.cols(), m, h));
  RETURN_IF_ERROR(CheckShape("up_proj", w.up_proj.rows(), w.up_proj.cols(), m, h));
  RETURN_IF_ERROR(CheckShape("down_proj", w.down_proj.rows(), w.down_proj.cols(), h, m));
  RETURN_IF_ERROR(CheckShape("input_layernorm", w.input_layernorm.size(), 1, h, 1));
  RETURN_IF_ERROR(CheckShape("post_attention_layernorm", w.post_attention_layernorm.size(), 1, h, 1));
  // Extras: present exactly when the config says (size 0 otherwise).
  const auto extra = [](const char* name, const Eigen::VectorXf& v, bool present, int64_t n) {
    return CheckShape(name, v.size(), 1, present ? n : 0, 1);
  };
  RETURN_IF_ERROR(extra("q_bias", w.q_bias, c.qkv_bias, c.q_dim()));
  RETURN_IF_ERROR(extra("k_bias", w.k_bias, c.qkv_bias, c.kv_dim()));
  RETURN_IF_ERROR(extra("v_bias", w.v_bias, c.qkv_bias, c.kv_dim()));
  RETURN_IF_ERROR(extra("o_bias", w.o_bias, c.o_bias, h));
  RETURN_IF_ERROR(extra("gate_bias", w.gate_bias, c.mlp_bias, m));
  RETURN_IF_ERROR(extra("up_bias", w.up_bias, c.mlp_bias, m));
  RETURN_IF_ERROR(extra("down_bias", w.down_bias, c.mlp_bias, h));
  RETURN_IF_ERROR(extra("q_norm", w.q_norm, c.qk_norm, c.head_dim));
  return extra("k_norm", w.k_norm, c.qk_norm, c.head_dim);
}

}  // namespace

absl::StatusOr<LlamaModel> LlamaModel::FromWeights(const LlamaConfig& c, LlamaWeights w) {
  RETURN_IF_ERROR(CheckShape("embed_tokens", w.embed_tokens.rows(), w.embed_tokens.cols(),
                             c.vocab_size, c.hidden_size));
  if (static_cast<int64_t>(w.layers.size()) != c.num_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat(w.layers.size(), " layers, expected ", c.num_layers));
  }
  for (const LlamaLayerWeights& layer : w.layers) RETURN_IF_ERROR(CheckLayer(c, layer));
  RETURN_IF_ERROR(CheckShape("norm", w.norm.size(), 1, c.hidden_size, 1));
  if (c.tie_word_embeddings) {
    w.lm_head.resize(0, 0);
  } else {
    RETURN_IF_ERROR(
        CheckShape("lm_head", w.lm_head.rows(), w.lm_head.cols(), c.vocab_size, c.hidden_size));
  }
  return LlamaModel(c, std::move(w));
}

absl::StatusOr<LlamaModel> LlamaModel::LoadSafetensors(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(const LlamaConfig config, LoadLlamaConfig(dir));
  ASSIGN_OR_RETURN(const SafetensorsModel st, SafetensorsModel::Open(dir));
  TensorSource src{dir.string(), nullptr, nullptr};
  src.shape = [&st](const std::string& name) -> const std::vector<int64_t>* {
    const TensorEntry* e = st.Find(name);
    return e == nullptr ? nullptr : &e->shape;
  };
  src.values = [&st, &dir](const std::string& name) -> absl::StatusOr<std::vector<float>> {
    ASSIGN_OR_RETURN(const TensorView view, st.Get(name));
    if (!IsFloatDType(view.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(dir.string(), ": tensor ", name, " is ",
                                                     DTypeName(view.dtype),
                                                     ", expected F32, F16 or BF16"));
    }
    std::vector<float> out(static_cast<size_t>(view.NumElements()));
    RETURN_IF_ERROR(ConvertToF32(view.dtype, view.data, out));
    return out;
  };
  return LoadFrom(config, src);
}

absl::StatusOr<LlamaModel> LlamaModel::LoadPacked(const std::filesystem::path& dir) {
  ASSIGN_OR_RETURN(const LlamaConfig config, LoadLlamaConfig(dir));
  ASSIGN_OR_RETURN(const PackedModel packed, PackedModel::Open(dir));
  TensorSource src{dir.string(), nullptr, nullptr};
  src.shape = [&packed](const std::string& name) -> const std::vector<int64_t>* {
    const ManifestTensor* t = packed.Find(name);
    return t == nullptr ? nullptr : &t->shape;
  };
  src.values = [&packed](const std::string& name) { return packed.Dequantize(name); };
  return LoadFrom(config, src);
}

}  // namespace glvq::model
