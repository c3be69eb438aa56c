// Packed models (format v1, docs/format.md): writing one from a source model
// and its quantized tensors, opening and verifying one, reading tensors back,
// and writing a plain dequantized safetensors model from one.
//
// A packed model is a directory holding
//   model.safetensors (or shards + model.safetensors.index.json)
//       every pass-through tensor of the source, byte for byte, and for each
//       quantized weight P the component tensors P.glvq.<component>;
//   config.json        the source's config.json (or {}) plus a
//                      "quantization_config" block;
//   glvq_manifest.json per-tensor checksums and exact bit accounting.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/packed/manifest.h"
#include "common/packed/quantized_tensor.h"
#include "common/safetensors/reader.h"
#include "common/tensor/dtype.h"

namespace glvq {

// Writes the packed model of `source` with the tensors `quantized` into
// `out_dir`, which must not exist (FAILED_PRECONDITION otherwise); missing
// parent directories are created. Every quantized tensor must be valid
// (ValidateQuantizedTensor), named once, and replace a 2-D float tensor of
// the source with the same shape and dtype; `config` must be sane; a
// source config.json must be a JSON object without a quantization_config.
// Violations are INVALID_ARGUMENT and leave the filesystem untouched.
//
// Everything is written into a sibling temporary directory
// "<out_dir>.tmp.PID.N", verified with PackedModel::Open, and only then
// renamed to `out_dir`; on any failure the temporary directory is removed,
// so `out_dir` either does not exist or holds a complete, verified model.
// Output bytes depend only on the inputs. Shards are cut at
// `max_shard_bytes` (see WriteSafetensorsModel).
//
// `replaced` (optional) gives some pass-through tensors other values than
// the source's (fine-tuned norm weights): name → bytes in the source
// tensor's dtype, of its size; INVALID_ARGUMENT for a name that is not a
// pass-through float tensor of the source or a size that differs.
using PassthroughValues = std::map<std::string, std::vector<std::byte>, std::less<>>;
absl::Status WritePackedModel(const std::filesystem::path& out_dir,
                              const SafetensorsModel& source,
                              std::span<const QuantizedTensor> quantized,
                              const QuantizationConfig& config,
                              uint64_t max_shard_bytes = uint64_t{5} << 30,
                              const PassthroughValues* replaced = nullptr);

// Hands WritePackedModelStreamed the quantized tensor named `name`; the
// pointer stays valid until the next call. It is called once per tensor
// while the manifest is built, then again as the data is written (once for
// each element size among the tensor's components, in name order within
// each), and must return the same tensor every time.
using QuantizedTensorLoader =
    std::function<absl::StatusOr<const QuantizedTensor*>(const std::string& name)>;

// WritePackedModel for quantized tensors that are not all in memory: the
// tensors `names` (each once) are obtained from `load` when they are
// needed, so only one must exist at a time. The same checks (INVALID_ARGUMENT
// before anything is written), the same temp-directory scheme with the
// re-read verification before the rename, and the same bytes as
// WritePackedModel with the same tensors; `load`'s errors are passed on. A
// tensor that changes between loads fails the verification (DATA_LOSS).
// Returns the manifest written.
absl::StatusOr<Manifest> WritePackedModelStreamed(const std::filesystem::path& out_dir,
                                                  const SafetensorsModel& source,
                                                  const std::vector<std::string>& names,
                                                  const QuantizedTensorLoader& load,
                                                  const QuantizationConfig& config,
                                                  uint64_t max_shard_bytes = uint64_t{5} << 30,
                                                  const PassthroughValues* replaced = nullptr);

// A verified, read-only packed model. Tensor data stays memory-mapped for
// the object's lifetime; results of the accessors are owned copies.
class PackedModel {
 public:
  // Reads and verifies the packed model in `dir`: manifest format and
  // version; config.json's quantization_config equal to the manifest's;
  // the safetensors tensors exactly those the manifest lists, each with the
  // recorded dtype, shape, size and CRC32C; every quantized tensor valid
  // and its accounting (and the totals) equal to the manifest's. Integrity
  // failures are DATA_LOSS naming the tensor (for checksums: expected and
  // actual values); errors of ParseManifest and SafetensorsModel::Open are
  // passed on.
  static absl::StatusOr<PackedModel> Open(const std::filesystem::path& dir);

  const std::filesystem::path& directory() const { return directory_; }
  const Manifest& manifest() const { return manifest_; }
  const SafetensorsModel& safetensors() const { return safetensors_; }
  const BitsAccounting& totals() const { return manifest_.totals; }

  // The manifest entry of `name` (a source tensor name, not a component
  // name), or nullptr.
  const ManifestTensor* Find(std::string_view name) const;
  bool IsQuantized(std::string_view name) const;

  // A copy of quantized tensor `name`. NOT_FOUND if there is no such tensor,
  // FAILED_PRECONDITION if it is a pass-through tensor.
  absl::StatusOr<QuantizedTensor> LoadQuantized(std::string_view name) const;
  // Dense F32 values (row-major) of tensor `name`: decoded with DequantizeRef
  // if quantized, converted if a float pass-through tensor. NOT_FOUND if
  // absent, FAILED_PRECONDITION for an integer pass-through tensor.
  absl::StatusOr<std::vector<float>> Dequantize(std::string_view name) const;

 private:
  PackedModel(std::filesystem::path dir, Manifest manifest, SafetensorsModel st)
      : directory_(std::move(dir)),
        manifest_(std::move(manifest)),
        safetensors_(std::move(st)) {}

  std::filesystem::path directory_;
  Manifest manifest_;
  SafetensorsModel safetensors_;
};

// Writes a plain safetensors model into `out_dir` (which must not exist;
// same atomic temp-directory scheme as WritePackedModel): every quantized
// weight decoded with DequantizeRef and stored as `dtype` (a float dtype;
// nullopt = the weight's source dtype), every pass-through tensor copied
// byte for byte, and config.json without quantization_config. Holds all
// dequantized weights in memory at once.
absl::Status WriteDequantizedModel(const PackedModel& model,
                                   const std::filesystem::path& out_dir,
                                   std::optional<DType> dtype = std::nullopt,
                                   uint64_t max_shard_bytes = uint64_t{5} << 30);

}  // namespace glvq
