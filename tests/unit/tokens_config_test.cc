// Token files and config.json parsing: what is accepted, and that every
// rejection names the file and the line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include <string>

#include "model/llama_config.h"
#include "model/tokens.h"

namespace glvq::model {
namespace {

using ::testing::HasSubstr;

TEST(Tokens, ParsesSequencesSkippingCommentsAndBlankLines) {
  const std::string text = "# header\n1 5 7\n\n   # indented comment\n2\t3  4\r\n  9 \n";
  auto seqs = ParseTokens(text, "t.txt", 10);
  ASSERT_TRUE(seqs.ok()) << seqs.status();
  ASSERT_EQ(seqs->size(), 3u);
  EXPECT_EQ((*seqs)[0], (TokenSequence{1, 5, 7}));
  EXPECT_EQ((*seqs)[1], (TokenSequence{2, 3, 4}));
  EXPECT_EQ((*seqs)[2], (TokenSequence{9}));
  EXPECT_EQ(CountTokens(*seqs), 7);
  EXPECT_TRUE(ParseTokens("0 1", "t.txt", 2).ok()) << "no trailing newline";
}

struct BadCase {
  const char* text;
  const char* expect;  // substring of the message
};

TEST(Tokens, RejectsBadInputNamingFileAndLine) {
  const BadCase cases[] = {
      {"1 2\n3 512\n", "t.txt:2: token id \"512\" is outside the vocabulary [0, 512)"},
      {"1 2\n\n# c\n4 x5 6\n", "t.txt:4: \"x5\" is not a token id"},
      {"1 2.5\n", "t.txt:1: \"2.5\" is not a token id"},
      {"1 +2\n", "t.txt:1: \"+2\" is not a token id"},
      {"7 -1\n", "t.txt:1: token id \"-1\" is outside"},
      {"99999999999999999999999\n", "t.txt:1: token id \"99999999999999999999999\" is outside"},
      {"1 2 # trailing comment\n", "t.txt:1: \"#\" is not a token id"},
      {"\n\n  \n# only comments\n", "t.txt: no token sequences in its 4 lines"},
      {"", "t.txt: no token sequences"},
  };
  for (const BadCase& c : cases) {
    auto r = ParseTokens(c.text, "t.txt", 512);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expect));
    EXPECT_EQ(std::string(r.status().message()).find('\n'), std::string::npos) << "one line";
  }
}

TEST(Tokens, BinaryGarbageIsQuotedReadably) {
  auto r = ParseTokens(std::string("1 \x01\xff\x7f", 5), "t.txt", 10);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("\"???\""));
}

TEST(Tokens, MissingFileIsNotFound) {
  auto r = ReadTokenFile("/nonexistent/tokens.txt", 10);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("/nonexistent/tokens.txt"));
}

constexpr char kStoriesConfig[] = R"({
  "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
  "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
  "num_key_value_heads": 4, "vocab_size": 512, "max_position_embeddings": 512,
  "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "hidden_act": "silu",
  "tie_word_embeddings": true, "torch_dtype": "float32", "bos_token_id": 0})";

TEST(LlamaConfig, ParsesAnHfConfig) {
  auto c = ParseLlamaConfig(kStoriesConfig, "config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 172);
  EXPECT_EQ(c->num_layers, 5);
  EXPECT_EQ(c->num_heads, 8);
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->q_dim(), 64);
  EXPECT_EQ(c->kv_dim(), 32);
  EXPECT_EQ(c->vocab_size, 512);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->bos_token_id, 0);
}

TEST(LlamaConfig, DefaultsFollowHuggingFace) {
  auto c = ParseLlamaConfig(R"({"hidden_size": 32, "intermediate_size": 40,
      "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10,
      "head_dim": 16, "rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}})",
                            "c.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 16) << "explicit head_dim wins over hidden / heads";
  EXPECT_EQ(c->q_dim(), 64);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 500000.0);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->max_position_embeddings, 2048);
  EXPECT_EQ(c->bos_token_id, 1);
  EXPECT_TRUE(c->eos_token_ids.empty());
}

TEST(LlamaConfig, EosIsOneIdOrAList) {
  const std::string base = R"({"hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 1,
      "num_attention_heads": 4, "vocab_size": 10)";
  EXPECT_EQ(ParseLlamaConfig(base + R"(, "eos_token_id": 2})", "c.json")->eos_token_ids,
            std::vector<int64_t>({2}));
  EXPECT_EQ(ParseLlamaConfig(base + R"(, "eos_token_id": [7, 8]})", "c.json")->eos_token_ids,
            std::vector<int64_t>({7, 8}));
  EXPECT_THAT(ParseLlamaConfig(base + R"(, "eos_token_id": [1, "x"]})", "c.json").status().message(),
              ::testing::HasSubstr("eos_token_id must be a non-negative integer or a list"));
}

TEST(LlamaConfig, RejectsWhatItCannotRunWithClearErrors) {
  const std::string base = R"("hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
      "num_attention_heads": 8, "vocab_size": 512)";
  const struct {
    std::string json;
    absl::StatusCode code;
    const char* expect;
  } cases[] = {
      {"not json", absl::StatusCode::kInvalidArgument, "c.json: not a valid JSON object"},
      {"[1]", absl::StatusCode::kInvalidArgument, "not a valid JSON object"},
      {R"({"intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1,
           "vocab_size": 1})",
       absl::StatusCode::kInvalidArgument, "c.json: hidden_size is missing"},
      {"{" + base + R"(, "model_type": "gemma"})", absl::StatusCode::kInvalidArgument,
       "model_type is \"gemma\"; supported: llama, mistral, qwen2, qwen3"},
      {"{" + base + R"(, "num_key_value_heads": 3})", absl::StatusCode::kInvalidArgument,
       "num_key_value_heads 3 does not divide num_attention_heads 8"},
      {R"({"hidden_size": 60, "intermediate_size": 1, "num_hidden_layers": 1,
           "num_attention_heads": 8, "vocab_size": 1})",
       absl::StatusCode::kInvalidArgument, "not a multiple of num_attention_heads"},
      {"{" + base + R"(, "head_dim": 7})", absl::StatusCode::kInvalidArgument, "head_dim 7 is odd"},
      {"{" + base + R"(, "vocab_size": -5})", absl::StatusCode::kInvalidArgument,
       "vocab_size must be a positive integer, not -5"},
      {"{" + base + R"(, "rms_norm_eps": "small"})", absl::StatusCode::kInvalidArgument,
       "rms_norm_eps must be a positive number"},
      {"{" + base + R"(, "bos_token_id": [1, 2]})", absl::StatusCode::kInvalidArgument,
       "bos_token_id must be a non-negative integer, not [1,2]"},
      {"{" + base + R"(, "rope_scaling": {"type": "longrope", "factor": 2.0}})",
       absl::StatusCode::kUnimplemented, "rope_type \"longrope\" (supported: default, linear,"},
      {"{" + base + R"(, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})",
       absl::StatusCode::kInvalidArgument,
       "rope_scaling.low_freq_factor must be a positive number for rope_type llama3"},
      {"{" + base + R"(, "rope_scaling": {"type": "linear"}})", absl::StatusCode::kInvalidArgument,
       "rope_scaling.factor must be a positive number"},
      {"{" + base + R"(, "partial_rotary_factor": 0.5})", absl::StatusCode::kUnimplemented,
       "partial_rotary_factor"},
      {"{" + base + R"(, "model_type": "qwen2", "use_sliding_window": true})",
       absl::StatusCode::kUnimplemented, "use_sliding_window"},
      {"{" + base + R"(, "num_local_experts": 8})", absl::StatusCode::kUnimplemented,
       "a mixture of experts (num_local_experts)"},
      {"{" + base + R"(, "hidden_act": "gelu"})", absl::StatusCode::kUnimplemented,
       "hidden_act \"gelu\""},
  };
  for (const auto& c : cases) {
    auto r = ParseLlamaConfig(c.json, "c.json");
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), c.code) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expect));
  }
  EXPECT_TRUE(ParseLlamaConfig("{" + base + R"(, "rope_scaling": null})", "c.json").ok());
}

TEST(LlamaConfig, ReadsTheFamiliesSwitchesAndRopeScaling) {
  const std::string base = R"("hidden_size": 64, "intermediate_size": 172, "num_hidden_layers": 2,
      "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 512,
      "max_position_embeddings": 4096)";
  auto llama3 = ParseLlamaConfig("{" + base + R"(, "rope_theta": 500000.0, "rope_scaling": {
      "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192}, "attention_bias": true, "mlp_bias": true})",
                                 "c.json");
  ASSERT_TRUE(llama3.ok()) << llama3.status();
  EXPECT_EQ(llama3->rope_scaling.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(llama3->rope_theta, 500000.0);
  EXPECT_EQ(llama3->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_TRUE(llama3->qkv_bias && llama3->o_bias && llama3->mlp_bias && !llama3->qk_norm);

  auto qwen2 = ParseLlamaConfig("{" + base + R"(, "model_type": "qwen2", "sliding_window": 32})",
                                "c.json");
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  EXPECT_TRUE(qwen2->qkv_bias);
  EXPECT_FALSE(qwen2->o_bias);
  EXPECT_EQ(qwen2->sliding_window, 0) << "Qwen2 without use_sliding_window attends to everything";

  auto qwen3 = ParseLlamaConfig("{" + base + R"(, "model_type": "qwen3", "head_dim": 16})", "c.json");
  ASSERT_TRUE(qwen3.ok()) << qwen3.status();
  EXPECT_TRUE(qwen3->qk_norm);
  EXPECT_FALSE(qwen3->qkv_bias);

  auto mistral = ParseLlamaConfig("{" + base + R"(, "model_type": "mistral", "sliding_window": 32})",
                                  "c.json");
  ASSERT_TRUE(mistral.ok()) << mistral.status();
  EXPECT_EQ(mistral->sliding_window, 32);

  // yarn without attention_factor: 0.1 ln(factor) + 1, as transformers infers it.
  auto yarn = ParseLlamaConfig("{" + base + R"(, "rope_parameters": {"rope_type": "yarn",
      "factor": 4.0, "rope_theta": 10000.0, "original_max_position_embeddings": 1024}})", "c.json");
  ASSERT_TRUE(yarn.ok()) << yarn.status();
  EXPECT_NEAR(yarn->rope_scaling.attention_factor, 0.1 * std::log(4.0) + 1.0, 1e-12);
}

}  // namespace
}  // namespace glvq::model
