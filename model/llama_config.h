// The architecture of a Llama-family checkpoint, read from its Hugging Face
// config.json: Llama 1/2/3.x (with rope_scaling), Mistral, Qwen2/2.5 and
// Qwen3 — one decoder with a few switches (biases, q/k norms, sliding
// window, RoPE scaling). Mixture-of-experts families are refused.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>
#include <string_view>

#include "absl/status/statusor.h"

namespace glvq::model {

// How the rotary angles are scaled (transformers' rope_type). Angles use
// inverse frequencies inv_freq[i] = 1 / θ^(2i/d), changed per type:
//   linear:  inv_freq / factor;
//   dynamic: NTK: θ' = θ · (factor · L / max_position_embeddings − (factor − 1))^(d/(d−2))
//            with L = max(longest sequence, max_position_embeddings);
//   llama3:  wavelengths beyond original/low_freq_factor divided by factor,
//            below original/high_freq_factor kept, smoothly blended between;
//   yarn:    interpolated (/factor) and extrapolated frequencies blended by a
//            linear ramp over the dimensions set by beta_fast/beta_slow, and
//            cos/sin multiplied by attention_factor.
enum class RopeType { kDefault, kLinear, kDynamic, kLlama3, kYarn };

struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1;
  int64_t original_max_position_embeddings = 0;  // llama3, yarn
  double low_freq_factor = 1, high_freq_factor = 4;  // llama3
  double beta_fast = 32, beta_slow = 1;            // yarn
  double attention_factor = 1;  // yarn: cos and sin are scaled by it (resolved from mscale)
  bool truncate = true;         // yarn: round the ramp's ends to whole dimensions
  bool operator==(const RopeScaling&) const = default;
};

struct LlamaConfig {
  std::string model_type = "llama";  // llama, mistral, qwen2 or qwen3
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;    // num_hidden_layers
  int64_t num_heads = 0;     // num_attention_heads
  int64_t num_kv_heads = 0;  // num_key_value_heads (GQA); = num_heads if absent
  int64_t head_dim = 0;      // head_dim, else hidden_size / num_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 0;
  double rope_theta = 0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // q/k/v_proj have biases (Qwen2; Llama's attention_bias)
  bool o_bias = false;    // o_proj has a bias (Llama's attention_bias)
  bool mlp_bias = false;  // gate/up/down_proj have biases (Llama's mlp_bias)
  bool qk_norm = false;   // RMSNorm over each head of q and k before RoPE (Qwen3)
  int64_t sliding_window = 0;  // attend to at most this many latest tokens; 0 = all (Mistral)
  int64_t bos_token_id = 1;  // where sampled sequences start (HF's default)
  std::vector<int64_t> eos_token_ids;  // config.json's eos_token_id (one or a list); may be empty

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  bool operator==(const LlamaConfig&) const = default;
};

// Parses the text of a config.json; `where` (the file's path) prefixes every
// error. Missing optional keys take the Hugging Face LlamaConfig defaults.
// INVALID_ARGUMENT for malformed JSON, a model_type other than llama,
// mistral, qwen2 or qwen3 (the message lists them), missing or non-positive
// sizes, heads that do not divide, an odd head_dim, a bos_token_id that is
// not a non-negative integer, RoPE scaling without its parameters;
// UNIMPLEMENTED, naming the key, for what this forward pass lacks (another
// rope_type, partial rotary embeddings, Qwen's per-layer sliding windows,
// mixture-of-experts layers, an activation other than silu).
absl::StatusOr<LlamaConfig> ParseLlamaConfig(std::string_view json_text, const std::string& where);

// Reads `model_dir`/config.json (NOT_FOUND if it is missing).
absl::StatusOr<LlamaConfig> LoadLlamaConfig(const std::filesystem::path& model_dir);

}  // namespace glvq::model
