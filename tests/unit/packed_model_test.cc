#include "common/packed/packed_model.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "common/base/file_util.h"
#include "common/packed/quantized_tensor.h"
#include "common/packed/trellis_code.h"
#include "common/packed/trellis_tensor.h"
#include "common/safetensors/reader.h"
#include "common/safetensors/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/test_support.h"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using json = nlohmann::json;

constexpr char kMlp0[] = "layers.0.mlp.weight";   // F32 12x172, glvq d=8
constexpr char kMlp1[] = "layers.1.mlp.weight";   // F32 12x172, glvq d=32
constexpr char kAttn[] = "layers.0.attn.weight";  // BF16 7x64, rtn (padded streams)
constexpr char kNorm[] = "layers.0.norm.weight";  // F32 [172], pass-through
constexpr char kHead[] = "lm_head.weight";        // F16 4x16, pass-through
constexpr char kIds[] = "position_ids";           // I64 [4], pass-through

// ---------------------------------------------------------------------------
// Building inputs

std::vector<std::byte> RandomFloatBytes(DType dtype, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> values(static_cast<size_t>(n));
  for (float& v : values) v = dist(rng);
  std::vector<std::byte> bytes(values.size() * DTypeSize(dtype));
  EXPECT_TRUE(ConvertFromF32(values, dtype, bytes).ok());
  return bytes;
}

struct SourceTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<std::byte> bytes;
};

std::vector<SourceTensor> SourceTensors() {
  std::vector<SourceTensor> t;
  t.push_back({kMlp0, DType::kF32, {12, 172}, RandomFloatBytes(DType::kF32, 12 * 172, 1)});
  t.push_back({kMlp1, DType::kF32, {12, 172}, RandomFloatBytes(DType::kF32, 12 * 172, 2)});
  t.push_back({kAttn, DType::kBF16, {7, 64}, RandomFloatBytes(DType::kBF16, 7 * 64, 3)});
  t.push_back({kNorm, DType::kF32, {172}, RandomFloatBytes(DType::kF32, 172, 4)});
  t.push_back({kHead, DType::kF16, {4, 16}, RandomFloatBytes(DType::kF16, 4 * 16, 5)});
  std::vector<std::byte> ids(4 * 8);
  for (size_t i = 0; i < ids.size(); i += 8) ids[i] = static_cast<std::byte>(i / 8);
  t.push_back({kIds, DType::kI64, {4}, ids});
  return t;
}

void WriteSourceModel(const fs::path& dir) {
  fs::create_directories(dir);
  const std::vector<SourceTensor> source = SourceTensors();
  std::vector<TensorToWrite> tensors;
  for (const SourceTensor& t : source) tensors.push_back({t.name, t.dtype, t.shape, t.bytes});
  ASSERT_TRUE(WriteSafetensorsModel(dir, tensors, {{"format", "pt"}}).ok());
  testing::WriteFile(dir / "config.json",
                     R"({"hidden_size": 172, "model_type": "llama", "vocab_size": 4})");
}

QuantizedTensor BaseTensor(const std::string& name, std::string_view method, DType dtype,
                           int64_t rows, int64_t cols, int64_t group_size, int64_t dim,
                           std::vector<uint8_t> bits) {
  QuantizedTensor qt;
  qt.name = name;
  qt.method = std::string(method);
  qt.source_dtype = dtype;
  qt.rows = rows;
  qt.cols = cols;
  qt.group_size = group_size;
  qt.dim = dim;
  qt.bits = std::move(bits);
  return qt;
}

void FillRandomCodes(QuantizedTensor& qt, std::mt19937& rng) {
  std::vector<uint8_t> codes;
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    std::uniform_int_distribution<int> dist(0, (1 << qt.bits[g]) - 1);
    for (int64_t i = 0; i < qt.rows * qt.GroupWidth(g); ++i) {
      codes.push_back(static_cast<uint8_t>(dist(rng)));
    }
  }
  ASSERT_TRUE(PackGroupCodes(codes, &qt).ok());
}

// Generators near diag(2^-(b-1)) keep the companded values y in about
// [-1, 1], where the inverse compander stays moderate even for large mu.
QuantizedTensor MakeGlvq(const std::string& name, int64_t dim, std::vector<uint8_t> bits,
                         std::vector<float> mu, uint32_t seed) {
  QuantizedTensor qt = BaseTensor(name, kMethodGlvq, DType::kF32, 12, 172, 128, dim,
                                  std::move(bits));
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  std::uniform_real_distribution<float> scale(0.01f, 0.2f);
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    for (int64_t i = 0; i < dim; ++i) {
      for (int64_t j = 0; j < dim; ++j) {
        const float diag = i == j ? std::ldexp(1.0f, 1 - qt.bits[g]) : 0.0f;
        qt.generators.push_back(diag + noise(rng));
      }
    }
    qt.scale.push_back(scale(rng));
  }
  qt.mu = std::move(mu);
  FillRandomCodes(qt, rng);
  qt.quality = TensorQuality{.nmse = 0.0123, .sqnr_db = 19.1, .proxy_loss = 0.0456};
  return qt;
}

// Groups of 50 and 14 columns over 7 rows: both streams end in padding bits
// (7*50*3 = 1050 and 7*14*5 = 490 bits).
QuantizedTensor MakeRtn(uint32_t seed) {
  QuantizedTensor qt = BaseTensor(kAttn, kMethodRtn, DType::kBF16, 7, 64, 50, 1, {3, 5});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    std::uniform_real_distribution<float> zero(0.0f, static_cast<float>((1 << qt.bits[g]) - 1));
    for (int64_t r = 0; r < qt.rows; ++r) {
      qt.scale.push_back(scale(rng));
      qt.zero.push_back(std::round(zero(rng)));
    }
  }
  FillRandomCodes(qt, rng);
  return qt;
}

std::vector<QuantizedTensor> MakeQuantized() {
  std::vector<QuantizedTensor> q;
  q.push_back(MakeGlvq(kMlp0, 8, {2, 3}, {0.0f, 25.0f}, 11));
  q.push_back(MakeGlvq(kMlp1, 32, {4, 1}, {40.0f, 0.0f}, 12));
  q.push_back(MakeRtn(13));
  return q;
}

QuantizationConfig Config() {
  return {.method = "glvq",
          .bits = 2.5,
          .lattice_dim = 8,
          .group_size = 128,
          .parameters = {{"rht", true}, {"mu_max", 5.0}, {"mu_grid", int64_t{6}},
                         {"grid", std::string("clip_search")}}};
}

// ---------------------------------------------------------------------------
// An independent decoder, written from docs/format.md element by element.

uint32_t CodeBitByBit(const QuantizedTensor& qt, int64_t g, int64_t k) {
  uint32_t v = 0;
  for (int j = 0; j < qt.bits[g]; ++j) {
    const int64_t bit = k * qt.bits[g] + j;
    const uint8_t byte = qt.codes[static_cast<size_t>(qt.offsets[g] + bit / 8)];
    v |= static_cast<uint32_t>((byte >> (bit % 8)) & 1) << j;
  }
  return v;
}

float DecodeElement(const QuantizedTensor& qt, int64_t r, int64_t col) {
  const int64_t g = col / qt.group_size;
  const int64_t c = col - g * qt.group_size;
  const int64_t width = std::min(qt.group_size, qt.cols - g * qt.group_size);
  const auto code = [&](int64_t cc) { return CodeBitByBit(qt, g, r * width + cc); };
  if (qt.method == kMethodRtn) {
    const size_t i = static_cast<size_t>(g * qt.rows + r);
    return static_cast<float>(static_cast<double>(qt.scale[i]) *
                              (code(c) - static_cast<double>(qt.zero[i])));
  }
  const int64_t d = qt.dim;
  const int64_t c0 = c / d * d;
  const int64_t k = std::min(d, width - c0);
  const int64_t i = c - c0;
  const double half = std::pow(2.0, qt.bits[g] - 1);
  double y = 0;
  for (int64_t j = 0; j < k; ++j) {
    const double gij = qt.generators[static_cast<size_t>(g * d * d + i * d + j)];
    y += gij * (code(c0 + j) - half + 0.5);
  }
  const double mu = qt.mu[static_cast<size_t>(g)];
  const double sign = y < 0 ? -1.0 : 1.0;
  const double w = mu == 0 ? y : sign * std::expm1(std::fabs(y) * std::log1p(mu)) / mu;
  return static_cast<float>(qt.scale[static_cast<size_t>(g)] * w);
}

std::vector<float> DecodeIndependently(const QuantizedTensor& qt) {
  std::vector<float> out;
  for (int64_t r = 0; r < qt.rows; ++r) {
    for (int64_t c = 0; c < qt.cols; ++c) out.push_back(DecodeElement(qt, r, c));
  }
  return out;
}

std::vector<float> DequantizeOrDie(const QuantizedTensor& qt) {
  std::vector<float> out(static_cast<size_t>(qt.NumWeights()));
  absl::Status s = DequantizeRef(qt, out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

// ---------------------------------------------------------------------------
// Filesystem helpers

std::map<std::string, std::string> ReadTree(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    absl::StatusOr<std::string> text = ReadFileToString(e.path(), uint64_t{1} << 30);
    EXPECT_TRUE(text.ok());
    files[fs::relative(e.path(), dir).string()] = text.value_or("");
  }
  return files;
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

json ReadJson(const fs::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_TRUE(text.ok());
  return json::parse(text.value_or("{}"));
}

void WriteJson(const fs::path& path, const json& j) { testing::WriteFile(path, j.dump(2)); }

// Byte offset of tensor `name` in model.safetensors.
uint64_t FileOffsetOf(const fs::path& file, const std::string& name) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(file);
  EXPECT_TRUE(f.ok()) << f.status();
  const TensorEntry* e = (*f)->Find(name);
  EXPECT_NE(e, nullptr);
  return (*f)->header().data_offset + e->begin;
}

// ---------------------------------------------------------------------------

class PackedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteSourceModel(dir_ / "source");
    absl::StatusOr<SafetensorsModel> source = SafetensorsModel::Open(dir_ / "source");
    ASSERT_TRUE(source.ok()) << source.status();
    source_.emplace(*std::move(source));
    quantized_ = MakeQuantized();
    for (const QuantizedTensor& qt : quantized_) ASSERT_TRUE(ValidateQuantizedTensor(qt).ok());
  }

  absl::Status Write(const fs::path& out) {
    return WritePackedModel(out, *source_, quantized_, Config());
  }

  PackedModel WriteAndOpen(const fs::path& out) {
    absl::Status s = Write(out);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<PackedModel> model = PackedModel::Open(out);
    EXPECT_TRUE(model.ok()) << model.status();
    return *std::move(model);
  }

  testing::ScratchDir dir_;
  std::optional<SafetensorsModel> source_;
  std::vector<QuantizedTensor> quantized_;
};

TEST_F(PackedModelTest, RoundTripsQuantizedTensors) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  for (const QuantizedTensor& qt : quantized_) {
    SCOPED_TRACE(qt.name);
    EXPECT_TRUE(model.IsQuantized(qt.name));
    absl::StatusOr<QuantizedTensor> loaded = model.LoadQuantized(qt.name);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ(*loaded, qt);
  }
}

// A trellis tensor in 8-row tiles (12 rows: tiles of 8 and 4) keeps its
// tile_rows through the manifest ("tile_rows" only where it is not 1).
TEST_F(PackedModelTest, TiledTrellisTensorsRoundTrip) {
  QuantizedTensor qt = BaseTensor(kMlp0, kMethodTrellis, DType::kF32, 12, 172, 32, 8,
                                  {2, 3, 1, 2, 4, 3});
  qt.tile_rows = 8;
  qt.offsets = TrellisGroupOffsets(qt.rows, qt.cols, qt.group_size, qt.bits, qt.tile_rows);
  std::mt19937 rng(21);
  qt.codes.resize(static_cast<size_t>(qt.offsets.back()));
  for (uint8_t& b : qt.codes) b = static_cast<uint8_t>(rng());
  for (int64_t g = 0; g < qt.NumGroups(); ++g) {
    int64_t end = qt.offsets[g];
    for (int64_t n : {8, 4}) {  // zero each tile stream's padding bits
      const int64_t bits = n * qt.GroupWidth(g) * qt.bits[g];
      end += trellis::StreamBytes(n * qt.GroupWidth(g), qt.bits[g]);
      if (bits % 8 != 0) qt.codes[end - 1] &= static_cast<uint8_t>((1u << (bits % 8)) - 1);
    }
  }
  qt.row_scale.assign(12, 0.5f);
  qt.scale.assign(6, 2.0f);
  ASSERT_TRUE(ValidateQuantizedTensor(qt).ok()) << ValidateQuantizedTensor(qt);
  quantized_[0] = qt;
  PackedModel model = WriteAndOpen(dir_ / "packed");
  absl::StatusOr<QuantizedTensor> loaded = model.LoadQuantized(kMlp0);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, qt);
  const json manifest = ReadJson(dir_ / "packed" / "glvq_manifest.json");
  for (const json& t : manifest["tensors"]) {
    if (t["name"] == kMlp0) {
      EXPECT_EQ(t["tile_rows"], 8);
    } else {
      EXPECT_FALSE(t.contains("tile_rows")) << t["name"];
    }
  }
}

TEST_F(PackedModelTest, DequantizeMatchesReferenceAndIndependentDecoder) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  for (const QuantizedTensor& qt : quantized_) {
    SCOPED_TRACE(qt.name);
    absl::StatusOr<std::vector<float>> dense = model.Dequantize(qt.name);
    ASSERT_TRUE(dense.ok()) << dense.status();
    const std::vector<float> ref = DequantizeOrDie(qt);
    EXPECT_EQ(*dense, ref);
    EXPECT_EQ(*dense, DecodeIndependently(qt));
  }
}

// The numerically sane form of the inverse compander is the textbook one.
TEST_F(PackedModelTest, InverseCompanderIsTheTextbookFormula) {
  const QuantizedTensor& qt = quantized_[0];  // group 1 has mu = 25
  const std::vector<float> dense = DequantizeOrDie(qt);
  QuantizedTensor identity = qt;
  identity.mu = {0.0f, 0.0f};
  identity.scale = {1.0f, 1.0f};
  const std::vector<float> y = DequantizeOrDie(identity);
  for (int64_t r = 0; r < qt.rows; ++r) {
    for (int64_t c = 128; c < qt.cols; ++c) {
      const size_t i = static_cast<size_t>(r * qt.cols + c);
      const double textbook = std::copysign((std::pow(26.0, std::fabs(y[i])) - 1) / 25, y[i]);
      EXPECT_NEAR(dense[i], qt.scale[1] * textbook, 1e-5 * std::fabs(dense[i]) + 1e-7);
    }
  }
}

TEST_F(PackedModelTest, PassThroughTensorsAreByteIdentical) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  for (const char* name : {kNorm, kHead, kIds}) {
    SCOPED_TRACE(name);
    EXPECT_FALSE(model.IsQuantized(name));
    absl::StatusOr<TensorView> packed = model.safetensors().Get(name);
    absl::StatusOr<TensorView> source = source_->Get(name);
    ASSERT_TRUE(packed.ok() && source.ok());
    EXPECT_EQ(packed->dtype, source->dtype);
    EXPECT_EQ(packed->shape, source->shape);
    EXPECT_TRUE(std::equal(packed->data.begin(), packed->data.end(), source->data.begin(),
                           source->data.end()));
  }
  EXPECT_EQ(model.safetensors().metadata(), source_->metadata());
  EXPECT_EQ(model.Dequantize(kIds).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(model.Dequantize("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(model.LoadQuantized(kNorm).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PackedModelTest, SafetensorsHoldExactlyTheExpectedTensors) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  std::vector<std::string> expected = {kHead, kIds, kNorm};
  for (const QuantizedTensor& qt : quantized_) {
    for (const std::string& c : ComponentNames(qt.method)) {
      expected.push_back(ComponentTensorName(qt.name, c));
    }
  }
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(model.safetensors().tensor_names(), expected);
  EXPECT_EQ(ListDir(dir_ / "packed"),
            (std::vector<std::string>{"config.json", "glvq_manifest.json", "model.safetensors"}));
}

TEST_F(PackedModelTest, ConfigJsonGainsQuantizationConfig) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const json config = ReadJson(dir_ / "packed" / "config.json");
  EXPECT_EQ(config["model_type"], "llama");
  EXPECT_EQ(config["hidden_size"], 172);
  const json expected = {{"quant_method", "glvq"}, {"format_version", 1}, {"method", "glvq"},
                         {"bits", 2.5},           {"lattice_dim", 8},    {"group_size", 128},
                         {"rht", true},           {"mu_max", 5.0},       {"mu_grid", 6},
                         {"grid", "clip_search"}};
  EXPECT_EQ(config["quantization_config"], expected);
  EXPECT_EQ(ReadJson(dir_ / "packed" / "glvq_manifest.json")["quantization_config"], expected);
  // The parameters come back with their JSON types (5.0 stays a double).
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->manifest().config, Config());
}

TEST_F(PackedModelTest, RejectsReservedOrNonFiniteParameters) {
  QuantizationConfig reserved = Config();
  reserved.parameters["bits"] = int64_t{3};
  EXPECT_THAT(WritePackedModel(dir_ / "a", *source_, quantized_, reserved).message(),
              HasSubstr("'bits' is reserved"));
  QuantizationConfig nan = Config();
  nan.parameters["mu_max"] = std::nan("");
  EXPECT_THAT(WritePackedModel(dir_ / "b", *source_, quantized_, nan).message(),
              HasSubstr("not finite"));
  EXPECT_FALSE(fs::exists(dir_ / "a"));
  EXPECT_FALSE(fs::exists(dir_ / "b"));
}

TEST_F(PackedModelTest, CopiesTheTokenizerAndGenerationFiles) {
  const std::string tokenizer = R"({"model": {"type": "BPE"}})";
  ASSERT_TRUE(AtomicWriteString(dir_ / "source" / "tokenizer.json", tokenizer).ok());
  ASSERT_TRUE(AtomicWriteString(dir_ / "blob", "{\"eos_token_id\": 2}").ok());
  fs::create_symlink(dir_ / "blob", dir_ / "source" / "generation_config.json");
  PackedModel model = WriteAndOpen(dir_ / "packed");
  EXPECT_EQ(*ReadFileToString(dir_ / "packed" / "tokenizer.json"), tokenizer);
  EXPECT_EQ(*ReadFileToString(dir_ / "packed" / "generation_config.json"),
            "{\"eos_token_id\": 2}");
  EXPECT_FALSE(fs::is_symlink(dir_ / "packed" / "generation_config.json"));
  ASSERT_TRUE(WriteDequantizedModel(model, dir_ / "dense", std::nullopt).ok());
  EXPECT_EQ(*ReadFileToString(dir_ / "dense" / "tokenizer.json"), tokenizer);
}

TEST_F(PackedModelTest, RefusesACompanionThatIsNotARegularFile) {
  // A FIFO would block a reader forever; a directory cannot be copied.
  ASSERT_EQ(mkfifo((dir_ / "source" / "tokenizer.json").c_str(), 0600), 0);
  const absl::Status s = Write(dir_ / "packed");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), HasSubstr("tokenizer.json: not a regular file"));
  EXPECT_FALSE(fs::exists(dir_ / "packed"));
}

TEST_F(PackedModelTest, AccountingMatchesBytesWritten) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  BitsAccounting sum;
  for (const QuantizedTensor& qt : quantized_) {
    const ManifestTensor* t = model.Find(qt.name);
    ASSERT_NE(t, nullptr);
    uint64_t component_bytes = 0;
    for (const std::string& c : ComponentNames(qt.method)) {
      const TensorEntry* e = model.safetensors().Find(ComponentTensorName(qt.name, c));
      ASSERT_NE(e, nullptr);
      component_bytes += e->end - e->begin;
    }
    EXPECT_EQ(t->accounting.total_bits, 8 * component_bytes) << qt.name;
    EXPECT_EQ(t->accounting, ComputeAccounting(qt));
    sum += t->accounting;
  }
  EXPECT_EQ(model.totals(), sum);
  // layers.0.mlp.weight by hand: groups of 128 and 44 columns at 2 and 3 bits.
  // codes 12*128*2/8 + ceil(12*44*3/8) = 384 + 198 bytes, bits 2, offsets 24,
  // generators 2*8*8*4 = 512, mu 8, scale 8: 1136 bytes.
  const ManifestTensor* mlp0 = model.Find(kMlp0);
  EXPECT_EQ(mlp0->accounting.weights, 12u * 172u);
  EXPECT_EQ(mlp0->accounting.payload_bits, 12u * 128u * 2u + 12u * 44u * 3u);
  EXPECT_EQ(mlp0->accounting.total_bits, 8u * 1136u);
  const json manifest = ReadJson(dir_ / "packed" / "glvq_manifest.json");
  for (const json& t : manifest["tensors"]) {
    if (t["name"] != kMlp0) continue;
    EXPECT_EQ(t["bits_total"], 9088);
    EXPECT_EQ(t["bits_payload"], 4656);
    EXPECT_DOUBLE_EQ(t["bits_per_weight_total"].get<double>(), 9088.0 / 2064.0);
    EXPECT_EQ(t["components"]["codes"]["bytes"], 582);
    EXPECT_EQ(t["quality"]["nmse"], 0.0123);
  }
  EXPECT_EQ(manifest["totals"]["passthrough_bytes"], 172 * 4 + 4 * 16 * 2 + 4 * 8);
}

TEST_F(PackedModelTest, OutputIsDeterministic) {
  ASSERT_TRUE(Write(dir_ / "a").ok());
  std::reverse(quantized_.begin(), quantized_.end());  // input order must not matter
  ASSERT_TRUE(Write(dir_ / "b").ok());
  const auto a = ReadTree(dir_ / "a");
  const auto b = ReadTree(dir_ / "b");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
}

TEST_F(PackedModelTest, ShardedOutputOpens) {
  ASSERT_TRUE(WritePackedModel(dir_ / "sharded", *source_, quantized_, Config(),
                               /*max_shard_bytes=*/4096)
                  .ok());
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "sharded");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_GT(model->safetensors().files().size(), 1u);
  EXPECT_TRUE(fs::exists(dir_ / "sharded" / "model.safetensors.index.json"));
  absl::StatusOr<std::vector<float>> dense = model->Dequantize(kMlp1);
  ASSERT_TRUE(dense.ok());
  EXPECT_EQ(*dense, DequantizeOrDie(quantized_[1]));
}

TEST_F(PackedModelTest, FlippedCodeByteIsDataLoss) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path file = dir_ / "packed" / "model.safetensors";
  const std::string codes = ComponentTensorName(kMlp0, "codes");
  const uint64_t offset = FileOffsetOf(file, codes) + 17;
  absl::StatusOr<std::string> bytes = ReadFileToString(file);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[offset] = static_cast<char>((*bytes)[offset] ^ 0x10);
  testing::WriteFile(file, *bytes);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr(codes));
  EXPECT_THAT(model.status().message(), HasSubstr("CRC32C mismatch"));
}

TEST_F(PackedModelTest, FlippedPassThroughByteIsDataLoss) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path file = dir_ / "packed" / "model.safetensors";
  const uint64_t offset = FileOffsetOf(file, kNorm);
  absl::StatusOr<std::string> bytes = ReadFileToString(file);
  ASSERT_TRUE(bytes.ok());
  (*bytes)[offset] = static_cast<char>((*bytes)[offset] ^ 0x01);
  testing::WriteFile(file, *bytes);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_EQ(model.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(model.status().message(), HasSubstr(kNorm));
}

json* FindEntry(json& manifest, const std::string& name) {
  for (json& t : manifest["tensors"]) {
    if (t["name"] == name) return &t;
  }
  return nullptr;
}

TEST_F(PackedModelTest, TamperedBitsTotalIsRejected) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path path = dir_ / "packed" / "glvq_manifest.json";
  json manifest = ReadJson(path);
  json* entry = FindEntry(manifest, kMlp0);
  ASSERT_NE(entry, nullptr);
  (*entry)["bits_total"] = (*entry)["bits_total"].get<uint64_t>() - 8;
  WriteJson(path, manifest);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
}

// A tamperer who also fixes up every derived figure is still caught by the
// recomputation from the data.
TEST_F(PackedModelTest, ConsistentlyTamperedAccountingIsRejected) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path path = dir_ / "packed" / "glvq_manifest.json";
  json manifest = ReadJson(path);
  json& entry = *FindEntry(manifest, kMlp0);
  const uint64_t weights = 12 * 172;
  const uint64_t bits_total = entry["bits_total"].get<uint64_t>() - 8 * 100;
  entry["bits_total"] = bits_total;
  entry["bits_per_weight_total"] = static_cast<double>(bits_total) / weights;
  json& totals = manifest["totals"];
  const uint64_t all = totals["bits_total"].get<uint64_t>() - 8 * 100;
  totals["bits_total"] = all;
  totals["bits_per_weight_total"] =
      static_cast<double>(all) / totals["weights_quantized"].get<double>();
  WriteJson(path, manifest);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr(kMlp0));
  EXPECT_THAT(model.status().message(), HasSubstr("bits_total"));
}

TEST_F(PackedModelTest, UnknownFormatVersionIsRejected) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path path = dir_ / "packed" / "glvq_manifest.json";
  json manifest = ReadJson(path);
  manifest["format_version"] = 2;
  WriteJson(path, manifest);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  EXPECT_EQ(model.status().code(), absl::StatusCode::kUnimplemented) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr("format_version 2"));
}

TEST_F(PackedModelTest, ManifestAndDataMustListTheSameTensors) {
  ASSERT_TRUE(Write(dir_ / "packed").ok());
  const fs::path path = dir_ / "packed" / "glvq_manifest.json";
  json manifest = ReadJson(path);
  json& tensors = manifest["tensors"];
  for (auto it = tensors.begin(); it != tensors.end(); ++it) {
    if ((*it)["name"] == kNorm) {
      manifest["totals"]["passthrough_bytes"] =
          manifest["totals"]["passthrough_bytes"].get<uint64_t>() - (*it)["bytes"].get<uint64_t>();
      tensors.erase(it);
      break;
    }
  }
  WriteJson(path, manifest);
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_EQ(model.status().code(), absl::StatusCode::kDataLoss) << model.status();
  EXPECT_THAT(model.status().message(), HasSubstr("not listed in the manifest"));
}

TEST_F(PackedModelTest, ExistingOutputDirIsLeftAlone) {
  const fs::path out = dir_ / "packed";
  fs::create_directories(out);
  testing::WriteFile(out / "keep.txt", "mine");
  absl::Status s = Write(out);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(ListDir(out), std::vector<std::string>{"keep.txt"});
  EXPECT_EQ(ListDir(dir_.path()), (std::vector<std::string>{"packed", "source"}));
  // An empty directory is not overwritten either.
  fs::create_directories(dir_ / "empty");
  EXPECT_EQ(Write(dir_ / "empty").code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(PackedModelTest, CreatesMissingParents) {
  ASSERT_TRUE(Write(dir_ / "a" / "b" / "packed").ok());
  EXPECT_TRUE(PackedModel::Open(dir_ / "a" / "b" / "packed").ok());
}

struct InvalidCase {
  std::string label;
  std::function<void(QuantizedTensor&)> corrupt;
  std::string message;
  size_t index = 0;  // which of MakeQuantized()'s tensors to corrupt
};

TEST_F(PackedModelTest, InvalidQuantizedTensorsAreRejectedWithoutOutput) {
  const std::vector<InvalidCase> cases = {
      {"bits 9", [](QuantizedTensor& q) { q.bits[1] = 9; }, "9 bits per code"},
      {"bits 0", [](QuantizedTensor& q) { q.bits[0] = 0; }, "0 bits per code"},
      {"offsets", [](QuantizedTensor& q) { q.offsets[1] += 1; }, "offsets[1]"},
      {"scale 0", [](QuantizedTensor& q) { q.scale[1] = 0; }, "scale[1]"},
      {"NaN generator",
       [](QuantizedTensor& q) { q.generators[5] = std::numeric_limits<float>::quiet_NaN(); },
       "generators[5]"},
      {"negative mu", [](QuantizedTensor& q) { q.mu[0] = -1; }, "mu[0]"},
      {"short codes", [](QuantizedTensor& q) { q.codes.pop_back(); }, "codes has"},
      {"padding bits", [](QuantizedTensor& q) { q.codes.back() |= 0x80; }, "padding", 2},
      {"NaN zero", [](QuantizedTensor& q) { q.zero[3] = std::nanf(""); }, "zero[3]", 2},
      {"rtn scale", [](QuantizedTensor& q) { q.scale[0] = -1; }, "scale[0]", 2},
      {"generators size", [](QuantizedTensor& q) { q.generators.pop_back(); }, "generators has"},
      {"dim 33", [](QuantizedTensor& q) { q.dim = 33; }, "dim must be"},
      {"method", [](QuantizedTensor& q) { q.method = "awq"; }, "unknown method"},
      {"not in source", [](QuantizedTensor& q) { q.name = "missing.weight"; }, "not in the source"},
      {"shape",
       [](QuantizedTensor& q) {
         q.rows = 1;
         ASSERT_TRUE(PackGroupCodes(std::vector<uint8_t>(172, 1), &q).ok());
       },
       "same 2-D float"},
      {"dtype", [](QuantizedTensor& q) { q.source_dtype = DType::kBF16; }, "same 2-D float"},
      {"quality", [](QuantizedTensor& q) { q.quality->nmse = std::nan(""); }, "quality"},
  };
  for (const InvalidCase& c : cases) {
    SCOPED_TRACE(c.label);
    std::vector<QuantizedTensor> quantized = quantized_;
    c.corrupt(quantized[c.index]);
    absl::Status s = WritePackedModel(dir_ / "packed", *source_, quantized, Config());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr(c.message));
    EXPECT_THAT(s.message(), HasSubstr(quantized[c.index].name));
    EXPECT_EQ(ListDir(dir_.path()), std::vector<std::string>{"source"});
  }
}

TEST_F(PackedModelTest, RejectsBadModelLevelInputs) {
  std::vector<QuantizedTensor> twice = {quantized_[0], quantized_[0]};
  EXPECT_EQ(WritePackedModel(dir_ / "x", *source_, twice, Config()).code(),
            absl::StatusCode::kInvalidArgument);
  // A 1-D tensor cannot be quantized.
  QuantizedTensor norm = quantized_[0];
  norm.name = kNorm;
  std::vector<QuantizedTensor> one = {norm};
  absl::Status s = WritePackedModel(dir_ / "x", *source_, one, Config());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(kNorm));
  QuantizationConfig bad = Config();
  bad.bits = 0;
  EXPECT_EQ(WritePackedModel(dir_ / "x", *source_, quantized_, bad).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ListDir(dir_.path()), std::vector<std::string>{"source"});
}

TEST_F(PackedModelTest, NoQuantizedTensorsIsAValidModel) {
  ASSERT_TRUE(WritePackedModel(dir_ / "packed", *source_, {}, Config()).ok());
  absl::StatusOr<PackedModel> model = PackedModel::Open(dir_ / "packed");
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->totals(), BitsAccounting{});
  EXPECT_EQ(model->manifest().tensors.size(), 6u);
}

TEST_F(PackedModelTest, WritesDequantizedModel) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  ASSERT_TRUE(WriteDequantizedModel(model, dir_ / "dense").ok());
  absl::StatusOr<SafetensorsModel> dense = SafetensorsModel::Open(dir_ / "dense");
  ASSERT_TRUE(dense.ok()) << dense.status();
  EXPECT_EQ(dense->tensor_names(), source_->tensor_names());
  for (const QuantizedTensor& qt : quantized_) {
    SCOPED_TRACE(qt.name);
    absl::StatusOr<TensorView> view = dense->Get(qt.name);
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(view->dtype, qt.source_dtype);
    EXPECT_EQ(view->shape, (std::vector<int64_t>{qt.rows, qt.cols}));
    const std::vector<float> ref = DequantizeOrDie(qt);
    std::vector<std::byte> expected(ref.size() * DTypeSize(qt.source_dtype));
    ASSERT_TRUE(ConvertFromF32(ref, qt.source_dtype, expected).ok());
    EXPECT_TRUE(std::equal(view->data.begin(), view->data.end(), expected.begin(),
                           expected.end()));
  }
  for (const char* name : {kNorm, kHead, kIds}) {
    absl::StatusOr<TensorView> a = dense->Get(name);
    absl::StatusOr<TensorView> b = source_->Get(name);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(std::equal(a->data.begin(), a->data.end(), b->data.begin(), b->data.end()));
  }
  const json config = ReadJson(dir_ / "dense" / "config.json");
  EXPECT_FALSE(config.contains("quantization_config"));
  EXPECT_EQ(config["model_type"], "llama");
  EXPECT_FALSE(fs::exists(dir_ / "dense" / "glvq_manifest.json"));
}

TEST_F(PackedModelTest, WritesDequantizedModelInRequestedDtype) {
  PackedModel model = WriteAndOpen(dir_ / "packed");
  ASSERT_TRUE(WriteDequantizedModel(model, dir_ / "dense", DType::kF32).ok());
  absl::StatusOr<SafetensorsModel> dense = SafetensorsModel::Open(dir_ / "dense");
  ASSERT_TRUE(dense.ok());
  absl::StatusOr<TensorView> attn = dense->Get(kAttn);
  ASSERT_TRUE(attn.ok());
  EXPECT_EQ(attn->dtype, DType::kF32);
  std::vector<float> values(static_cast<size_t>(attn->NumElements()));
  ASSERT_TRUE(ConvertToF32(attn->dtype, attn->data, values).ok());
  EXPECT_EQ(values, DequantizeOrDie(quantized_[2]));
  EXPECT_EQ(WriteDequantizedModel(model, dir_ / "int", DType::kI8).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteDequantizedModel(model, dir_ / "dense").code(),
            absl::StatusCode::kFailedPrecondition);
}

// ---------------------------------------------------------------------------
// QuantizedTensor in isolation

TEST(QuantizedTensorTest, ComponentsRoundTrip) {
  for (const QuantizedTensor& qt : MakeQuantized()) {
    SCOPED_TRACE(qt.name);
    std::map<std::string, TensorView, std::less<>> views;
    const std::string prefix = qt.name + ".glvq.";
    for (const TensorToWrite& t : ComponentTensors(qt)) {
      ASSERT_EQ(t.name.rfind(prefix, 0), 0u);
      views[t.name.substr(prefix.size())] = TensorView{t.dtype, t.shape, t.data};
    }
    QuantizedTensor meta = qt;
    meta.codes.clear();
    absl::StatusOr<QuantizedTensor> back = QuantizedTensorFromComponents(meta, views);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, qt);

    auto missing = views;
    missing.erase("scale");
    EXPECT_EQ(QuantizedTensorFromComponents(meta, missing).status().code(),
              absl::StatusCode::kInvalidArgument);
    auto wrong_dtype = views;
    wrong_dtype["bits"].dtype = DType::kI8;
    absl::Status s = QuantizedTensorFromComponents(meta, wrong_dtype).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("component 'bits'"));
  }
}

TEST(QuantizedTensorTest, GroupCodesRoundTrip) {
  const QuantizedTensor qt = MakeGlvq(kMlp0, 8, {2, 3}, {0, 0}, 5);
  std::vector<uint8_t> group(static_cast<size_t>(qt.rows * qt.GroupWidth(1)));
  ASSERT_TRUE(UnpackGroupCodes(qt, 1, group).ok());
  for (int64_t k = 0; k < static_cast<int64_t>(group.size()); ++k) {
    EXPECT_EQ(group[static_cast<size_t>(k)], CodeBitByBit(qt, 1, k));
  }
  const std::vector<packed::GroupDesc> descs = MakeGroupDescs(qt);
  ASSERT_EQ(descs.size(), 2u);
  EXPECT_EQ(descs[1].code_offset, 384u);
  EXPECT_EQ(descs[1].first_col, 128u);
  EXPECT_EQ(descs[1].width, 44u);
  EXPECT_EQ(descs[1].bits, 3u);
  EXPECT_EQ(descs[1].dim, 8u);
}

TEST(QuantizedTensorTest, RtnRequiresDimOneAndPerRowSideInfo) {
  QuantizedTensor qt = MakeRtn(3);
  EXPECT_TRUE(ValidateQuantizedTensor(qt).ok());
  QuantizedTensor dim2 = qt;
  dim2.dim = 2;
  EXPECT_EQ(ValidateQuantizedTensor(dim2).code(), absl::StatusCode::kInvalidArgument);
  QuantizedTensor short_zero = qt;
  short_zero.zero.pop_back();
  EXPECT_THAT(ValidateQuantizedTensor(short_zero).message(), HasSubstr("zero has"));
}

TEST(QuantizedTensorTest, DequantizeRejectsOverflowAndWrongOutputSize) {
  QuantizedTensor qt = MakeGlvq(kMlp0, 8, {2, 3}, {0, 255}, 5);
  for (float& g : qt.generators) g *= 1000;
  std::vector<float> out(static_cast<size_t>(qt.NumWeights()));
  absl::Status s = DequantizeRef(qt, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("decodes to"));
  std::vector<float> small(3);
  EXPECT_EQ(DequantizeRef(MakeRtn(1), small).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ManifestTest, SerializeParseRoundTrip) {
  Manifest m;
  m.config = Config();
  ManifestTensor t;
  t.name = "a";
  t.quantized = false;
  t.dtype = DType::kBF16;
  t.shape = {3};
  t.bytes = 6;
  t.crc32c = 0xdeadbeef;
  m.tensors.push_back(t);
  m.passthrough_bytes = 6;
  absl::StatusOr<Manifest> back = ParseManifest(SerializeManifest(m));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, m);
  EXPECT_THAT(SerializeManifest(m), HasSubstr("\"crc32c\": \"deadbeef\""));
  EXPECT_EQ(ParseManifest("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseManifest(R"({"format":"other"})").status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace glvq
