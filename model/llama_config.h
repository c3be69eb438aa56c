// The architecture of a Llama-family checkpoint, read from its Hugging Face
// config.json.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace glvq::model {

struct LlamaConfig {
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
  bool tie_word_embeddings = false;
  int64_t bos_token_id = 1;  // where sampled sequences start (HF's default)

  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  bool operator==(const LlamaConfig&) const = default;
};

// Parses the text of a config.json; `where` (the file's path) prefixes every
// error. Missing optional keys take the Hugging Face LlamaConfig defaults.
// INVALID_ARGUMENT for malformed JSON, a model_type other than "llama",
// missing or non-positive sizes, heads that do not divide, an odd head_dim,
// a bos_token_id that is not a non-negative integer;
// UNIMPLEMENTED for features this forward pass lacks (rope_scaling,
// attention or MLP biases, an activation other than silu).
absl::StatusOr<LlamaConfig> ParseLlamaConfig(std::string_view json_text, const std::string& where);

// Reads `model_dir`/config.json (NOT_FOUND if it is missing).
absl::StatusOr<LlamaConfig> LoadLlamaConfig(const std::filesystem::path& model_dir);

}  // namespace glvq::model
