#include "common/safetensors/writer.h"

#include <algorithm>
#include <numeric>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/safetensors/json_text.h"
#include "common/tensor/tensor_view.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using safetensors_internal::Quote;

constexpr std::string_view kMetadataKey = "__metadata__";
constexpr char kSingleFileName[] = "model.safetensors";
constexpr char kIndexFileName[] = "model.safetensors.index.json";
constexpr size_t kHeaderAlignment = 8;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

// For the header itself: a name that is not UTF-8 cannot go into JSON.
absl::StatusOr<std::string> JsonString(std::string_view text) {
  try {
    return Json(std::string(text)).dump();
  } catch (const Json::type_error&) {
    return Invalid("string ", Quote(text), " is not valid UTF-8");
  }
}

absl::StatusOr<uint64_t> ExpectedBytes(const std::string& name, DType dtype,
                                       const std::vector<int64_t>& shape) {
  int64_t elements = 1;
  for (const int64_t dim : shape) {
    if (dim < 0) {
      return Invalid("tensor ", Quote(name), ": negative dimension in shape ",
                     ShapeToString(shape));
    }
    if (__builtin_mul_overflow(elements, dim, &elements)) {
      return Invalid("tensor ", Quote(name), ": shape ", ShapeToString(shape), " overflows");
    }
  }
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(elements), DTypeSize(dtype), &bytes)) {
    return Invalid("tensor ", Quote(name), ": shape ", ShapeToString(shape), " overflows");
  }
  return bytes;
}

absl::Status ValidateName(const std::string& name) {
  if (name.empty()) return Invalid("tensor name is empty");
  if (name == kMetadataKey) return Invalid("tensor name \"__metadata__\" is reserved");
  return absl::OkStatus();
}

absl::Status ValidateTensor(const TensorToStream& t) {
  RETURN_IF_ERROR(ValidateName(t.name));
  ASSIGN_OR_RETURN(const uint64_t bytes, ExpectedBytes(t.name, t.dtype, t.shape));
  if (t.bytes != bytes) {
    return Invalid("tensor ", Quote(t.name), ": declares ", t.bytes, " bytes but shape ",
                   ShapeToString(t.shape), " of ", DTypeName(t.dtype), " needs ", bytes);
  }
  return absl::OkStatus();
}

// The descriptions of in-memory tensors, each checked against its data.
absl::StatusOr<std::vector<TensorToStream>> Describe(std::span<const TensorToWrite> tensors) {
  std::vector<TensorToStream> out;
  out.reserve(tensors.size());
  for (const TensorToWrite& t : tensors) {
    RETURN_IF_ERROR(ValidateName(t.name));
    ASSIGN_OR_RETURN(const uint64_t bytes, ExpectedBytes(t.name, t.dtype, t.shape));
    if (t.data.size() != bytes) {
      return Invalid("tensor ", Quote(t.name), ": data holds ", t.data.size(),
                     " bytes but shape ", ShapeToString(t.shape), " of ", DTypeName(t.dtype),
                     " needs ", bytes);
    }
    out.push_back({t.name, t.dtype, t.shape, bytes});
  }
  return out;
}

TensorDataWriter WriteFromMemory(std::span<const TensorToWrite> tensors) {
  return [tensors](size_t i, FileSink& sink) { return sink.Write(tensors[i].data); };
}

std::vector<size_t> OrderBy(std::span<const TensorToStream> tensors,
                            bool (*less)(const TensorToStream&, const TensorToStream&)) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return less(tensors[a], tensors[b]); });
  return order;
}

bool NameLess(const TensorToStream& a, const TensorToStream& b) { return a.name < b.name; }

// Largest elements first: every offset stays a multiple of the element size.
bool DataLess(const TensorToStream& a, const TensorToStream& b) {
  const size_t size_a = DTypeSize(a.dtype);
  const size_t size_b = DTypeSize(b.dtype);
  return size_a != size_b ? size_a > size_b : a.name < b.name;
}

absl::Status ValidateAll(std::span<const TensorToStream> tensors,
                         const std::vector<size_t>& by_name) {
  for (const TensorToStream& t : tensors) RETURN_IF_ERROR(ValidateTensor(t));
  for (size_t i = 1; i < by_name.size(); ++i) {
    if (tensors[by_name[i]].name == tensors[by_name[i - 1]].name) {
      return Invalid("duplicate tensor name ", Quote(tensors[by_name[i]].name));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MetadataJson(const std::map<std::string, std::string>& metadata) {
  std::vector<std::string> items;
  items.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    ASSIGN_OR_RETURN(const std::string json_key, JsonString(key));
    ASSIGN_OR_RETURN(const std::string json_value, JsonString(value));
    items.push_back(absl::StrCat(json_key, ":", json_value));
  }
  return absl::StrCat("{", absl::StrJoin(items, ","), "}");
}

absl::StatusOr<std::string> EntryJson(const TensorToStream& t, uint64_t begin) {
  ASSIGN_OR_RETURN(const std::string name, JsonString(t.name));
  return absl::StrCat(name, ":{\"dtype\":\"", DTypeName(t.dtype), "\",\"shape\":[",
                      absl::StrJoin(t.shape, ","), "],\"data_offsets\":[", begin, ",",
                      begin + t.bytes, "]}");
}

// Serialized by hand because the format wants "__metadata__" first and
// entries as dtype/shape/data_offsets, which a std::map-backed json can't keep.
absl::StatusOr<std::string> HeaderJson(std::span<const TensorToStream> tensors,
                                       const std::map<std::string, std::string>& metadata,
                                       const std::vector<size_t>& by_name,
                                       const std::vector<size_t>& data_order) {
  std::vector<uint64_t> begin(tensors.size());
  uint64_t offset = 0;
  for (const size_t i : data_order) {
    begin[i] = offset;
    offset += tensors[i].bytes;
  }
  std::vector<std::string> items;
  items.reserve(tensors.size() + 1);
  if (!metadata.empty()) {
    ASSIGN_OR_RETURN(const std::string meta, MetadataJson(metadata));
    items.push_back(absl::StrCat("\"__metadata__\":", meta));
  }
  for (const size_t i : by_name) {
    ASSIGN_OR_RETURN(std::string entry, EntryJson(tensors[i], begin[i]));
    items.push_back(std::move(entry));
  }
  return absl::StrCat("{", absl::StrJoin(items, ","), "}");
}

std::string LittleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (char& b : bytes) {
    b = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
  return bytes;
}

absl::StatusOr<std::string> SerializeHeader(std::span<const TensorToStream> tensors,
                                            const std::map<std::string, std::string>& metadata,
                                            std::vector<size_t>* order) {
  const std::vector<size_t> by_name = OrderBy(tensors, NameLess);
  RETURN_IF_ERROR(ValidateAll(tensors, by_name));
  std::vector<size_t> data_order = OrderBy(tensors, DataLess);
  ASSIGN_OR_RETURN(std::string json, HeaderJson(tensors, metadata, by_name, data_order));
  const size_t unaligned = (8 + json.size()) % kHeaderAlignment;
  if (unaligned != 0) json.append(kHeaderAlignment - unaligned, ' ');
  if (order != nullptr) *order = std::move(data_order);
  return LittleEndian64(json.size()) + json;
}

// One file of `tensors`; `index[i]` is the number write_data knows tensor i by.
absl::Status WriteFile(const fs::path& path, std::span<const TensorToStream> tensors,
                       const std::vector<size_t>& index, const TensorDataWriter& write_data,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<size_t> order;
  ASSIGN_OR_RETURN(const std::string header, SerializeHeader(tensors, metadata, &order));
  return AtomicWriteFile(path, [&](FileSink& sink) -> absl::Status {
    RETURN_IF_ERROR(sink.Write(header));
    for (const size_t i : order) {
      const uint64_t before = sink.bytes_written();
      RETURN_IF_ERROR(write_data(index[i], sink));
      if (sink.bytes_written() - before != tensors[i].bytes) {
        return absl::InternalError(absl::StrCat("tensor ", Quote(tensors[i].name), ": ",
                                                sink.bytes_written() - before,
                                                " bytes were written, ", tensors[i].bytes,
                                                " declared"));
      }
    }
    return absl::OkStatus();
  });
}

std::vector<size_t> AllIndices(size_t n) {
  std::vector<size_t> index(n);
  std::iota(index.begin(), index.end(), size_t{0});
  return index;
}

absl::Status RemoveIfPresent(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(path.string(), ": cannot remove: ", ec.message()));
  }
  return absl::OkStatus();
}

// Greedy in name order: a new shard starts when the next tensor would push
// the current one past the limit; a tensor larger than the limit is alone.
std::vector<std::vector<size_t>> PlanShards(std::span<const TensorToStream> tensors,
                                            uint64_t max_shard_bytes) {
  std::vector<std::vector<size_t>> shards;
  uint64_t current = 0;
  for (const size_t i : OrderBy(tensors, NameLess)) {
    const uint64_t size = tensors[i].bytes;
    if (shards.empty() || (!shards.back().empty() && current + size > max_shard_bytes)) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += size;
  }
  return shards;
}

absl::Status WriteShards(const fs::path& dir, std::span<const TensorToStream> tensors,
                         const TensorDataWriter& write_data,
                         const std::map<std::string, std::string>& metadata,
                         uint64_t max_shard_bytes) {
  const std::vector<std::vector<size_t>> shards = PlanShards(tensors, max_shard_bytes);
  Json weight_map = Json::object();
  uint64_t total_size = 0;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string shard_name =
        absl::StrFormat("model-%05d-of-%05d.safetensors", k + 1, shards.size());
    std::vector<TensorToStream> subset;
    for (const size_t i : shards[k]) {
      subset.push_back(tensors[i]);
      weight_map[tensors[i].name] = shard_name;
      total_size += tensors[i].bytes;
    }
    RETURN_IF_ERROR(WriteFile(dir / shard_name, subset, shards[k], write_data, metadata));
  }
  const Json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", weight_map}};
  // The index goes last: it is what makes the shards a model.
  RETURN_IF_ERROR(AtomicWriteString(dir / kIndexFileName, index.dump(2) + "\n"));
  return RemoveIfPresent(dir / kSingleFileName);
}

}  // namespace

absl::StatusOr<std::string> SerializeSafetensorsHeader(
    std::span<const TensorToWrite> tensors, const std::map<std::string, std::string>& metadata,
    std::vector<size_t>* order) {
  ASSIGN_OR_RETURN(const std::vector<TensorToStream> described, Describe(tensors));
  return SerializeHeader(described, metadata, order);
}

absl::Status WriteSafetensors(const fs::path& path, std::span<const TensorToWrite> tensors,
                              const std::map<std::string, std::string>& metadata) {
  ASSIGN_OR_RETURN(const std::vector<TensorToStream> described, Describe(tensors));
  return WriteFile(path, described, AllIndices(described.size()), WriteFromMemory(tensors),
                   metadata);
}

absl::Status WriteSafetensorsModel(const fs::path& dir, std::span<const TensorToWrite> tensors,
                                   const std::map<std::string, std::string>& metadata,
                                   uint64_t max_shard_bytes) {
  ASSIGN_OR_RETURN(const std::vector<TensorToStream> described, Describe(tensors));
  return StreamSafetensorsModel(dir, described, WriteFromMemory(tensors), metadata,
                                max_shard_bytes);
}

absl::Status StreamSafetensorsModel(const fs::path& dir, std::span<const TensorToStream> tensors,
                                    const TensorDataWriter& write_data,
                                    const std::map<std::string, std::string>& metadata,
                                    uint64_t max_shard_bytes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(absl::StrCat(dir.string(), ": not a directory"));
  }
  // Validate everything before the first file is written.
  RETURN_IF_ERROR(SerializeHeader(tensors, metadata, nullptr).status());
  uint64_t total = 0;
  for (const TensorToStream& t : tensors) total += t.bytes;
  if (total > max_shard_bytes) {
    return WriteShards(dir, tensors, write_data, metadata, max_shard_bytes);
  }
  RETURN_IF_ERROR(WriteFile(dir / kSingleFileName, tensors, AllIndices(tensors.size()),
                            write_data, metadata));
  // A stale index would describe a different model than the file beside it.
  return RemoveIfPresent(dir / kIndexFileName);
}

}  // namespace glvq
