#include "common/safetensors/reader.h"

#include <algorithm>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/safetensors/json_text.h"
#include "nlohmann/json.hpp"

namespace glvq {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using safetensors_internal::JsonErrorText;
using safetensors_internal::Quote;

constexpr char kSingleFileName[] = "model.safetensors";
constexpr char kIndexFileName[] = "model.safetensors.index.json";

// Keeps the code, puts the file in front of the message.
absl::Status Prefixed(const fs::path& path, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(path.string(), ": ", status.message()));
}

template <typename... Args>
absl::Status Invalid(const fs::path& path, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(path.string(), ": ", args...));
}

// What a model is made of before it becomes a SafetensorsModel.
struct LoadedFiles {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, size_t, std::less<>> file_of;
  std::map<std::string, std::string> metadata;
};

struct ShardIndex {
  std::map<std::string, std::string> weight_map;  // tensor -> shard name
  std::map<std::string, std::string> metadata;
};

absl::StatusOr<LoadedFiles> LoadSingleFile(const fs::path& path) {
  LoadedFiles loaded;
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
  for (const TensorEntry& t : file->tensors()) loaded.file_of.emplace(t.name, 0);
  loaded.metadata = file->header().metadata;
  loaded.files.push_back(std::move(file));
  return loaded;
}

// HF indexes carry numbers there ("total_size"); keep them as their JSON text.
std::map<std::string, std::string> IndexMetadata(const Json& metadata) {
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : metadata.items()) {
    out[key] = value.is_string() ? value.get<std::string>()
                                 : value.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
  return out;
}

absl::StatusOr<Json> ReadJsonObject(const fs::path& path) {
  ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& e) {
    return Invalid(path, "not valid JSON (error at byte ", e.byte, "): ", JsonErrorText(e));
  } catch (const Json::exception& e) {  // e.g. a number too large for a double
    return Invalid(path, "not valid JSON: ", JsonErrorText(e));
  }
  if (!json.is_object()) return Invalid(path, "not a JSON object");
  return json;
}

absl::StatusOr<ShardIndex> ReadShardIndex(const fs::path& index_path) {
  ASSIGN_OR_RETURN(const Json json, ReadJsonObject(index_path));
  const auto map_it = json.find("weight_map");
  if (map_it == json.end() || !map_it->is_object()) {
    return Invalid(index_path, "no \"weight_map\" object");
  }
  ShardIndex index;
  for (const auto& [tensor, shard] : map_it->items()) {
    if (!shard.is_string()) {
      return Invalid(index_path, "weight_map entry for ", Quote(tensor), " is not a string");
    }
    index.weight_map.emplace(tensor, shard.get<std::string>());
  }
  if (const auto meta_it = json.find("metadata"); meta_it != json.end()) {
    if (!meta_it->is_object()) return Invalid(index_path, "\"metadata\" is not an object");
    index.metadata = IndexMetadata(*meta_it);
  }
  return index;
}

bool IsStrictlyInside(const fs::path& path, const fs::path& dir) {
  const auto [dir_end, unused] = std::mismatch(dir.begin(), dir.end(), path.begin(), path.end());
  return dir_end == dir.end() && path != dir;
}

// The index comes from whoever published the model: a shard name must not
// reach files outside the model directory, by name or through a symlink.
absl::StatusOr<fs::path> ResolveShard(const fs::path& dir, const fs::path& index_path,
                                      const std::string& shard) {
  const std::string what = absl::StrCat("shard ", Quote(shard));
  if (shard.empty()) return Invalid(index_path, "empty shard name");
  if (shard.find('\0') != std::string::npos) return Invalid(index_path, what, " contains NUL");
  const fs::path relative(shard);
  if (relative.has_root_path()) {
    return Invalid(index_path, what, " is an absolute path; shards must be relative to ",
                   dir.string());
  }
  for (const fs::path& part : relative) {
    if (part == "..") return Invalid(index_path, what, " contains \"..\"");
  }
  std::error_code ec;
  const fs::path real_dir = fs::weakly_canonical(dir, ec);
  const fs::path real_shard = ec ? fs::path() : fs::weakly_canonical(dir / relative, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat(index_path.string(), ": cannot resolve ", what, ": ", ec.message()));
  }
  if (!IsStrictlyInside(real_shard, real_dir)) {
    return Invalid(index_path, what, " resolves to ", real_shard.string(),
                   ", outside the model directory");
  }
  if (!fs::exists(real_shard, ec)) {
    return absl::NotFoundError(absl::StrCat(index_path.string(), ": ", what,
                                            " does not exist (looked for ",
                                            (dir / relative).string(), ")"));
  }
  return real_shard;
}

// Opens every distinct shard once; two names for one file share it.
absl::Status OpenShards(const fs::path& dir, const fs::path& index_path, const ShardIndex& index,
                        LoadedFiles* loaded, std::map<std::string, size_t>* file_of_shard) {
  std::map<fs::path, size_t> file_of_path;
  for (const auto& [tensor, shard] : index.weight_map) {
    if (file_of_shard->contains(shard)) continue;
    ASSIGN_OR_RETURN(const fs::path real, ResolveShard(dir, index_path, shard));
    auto [it, inserted] = file_of_path.emplace(real, loaded->files.size());
    if (inserted) {
      ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(real));
      for (const auto& [key, value] : file->header().metadata) loaded->metadata.emplace(key, value);
      loaded->files.push_back(std::move(file));
    }
    file_of_shard->emplace(shard, it->second);
  }
  return absl::OkStatus();
}

absl::Status CollectTensors(const fs::path& index_path, LoadedFiles* loaded) {
  for (size_t i = 0; i < loaded->files.size(); ++i) {
    for (const TensorEntry& t : loaded->files[i]->tensors()) {
      const auto [it, inserted] = loaded->file_of.emplace(t.name, i);
      if (!inserted) {
        return Invalid(index_path, "tensor ", Quote(t.name),
                       " is in two shards: ", loaded->files[it->second]->path().string(), " and ",
                       loaded->files[i]->path().string());
      }
    }
  }
  return absl::OkStatus();
}

// The index and the shards must describe the same set of tensors.
absl::Status CrossCheckIndex(const fs::path& index_path, const ShardIndex& index,
                             const LoadedFiles& loaded,
                             const std::map<std::string, size_t>& file_of_shard) {
  for (const auto& [tensor, shard] : index.weight_map) {
    const auto it = loaded.file_of.find(tensor);
    if (it == loaded.file_of.end() || it->second != file_of_shard.at(shard)) {
      return Invalid(index_path, "tensor ", Quote(tensor), " is mapped to shard ", Quote(shard),
                     ", which does not contain it");
    }
  }
  for (const auto& [tensor, file_index] : loaded.file_of) {
    if (!index.weight_map.contains(tensor)) {
      return Invalid(index_path, "shard ", loaded.files[file_index]->path().string(),
                     " holds tensor ", Quote(tensor), ", which the index does not list");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LoadedFiles> LoadShardedModel(const fs::path& dir, const fs::path& index_path) {
  ASSIGN_OR_RETURN(const ShardIndex index, ReadShardIndex(index_path));
  LoadedFiles loaded;
  std::map<std::string, size_t> file_of_shard;
  RETURN_IF_ERROR(OpenShards(dir, index_path, index, &loaded, &file_of_shard));
  RETURN_IF_ERROR(CollectTensors(index_path, &loaded));
  RETURN_IF_ERROR(CrossCheckIndex(index_path, index, loaded, file_of_shard));
  for (const auto& [key, value] : index.metadata) loaded.metadata[key] = value;
  return loaded;
}

// Like transformers, a single model.safetensors wins over an index.
absl::StatusOr<LoadedFiles> LoadModel(const fs::path& path, fs::path* dir) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    *dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    return LoadSingleFile(path);
  }
  *dir = path;
  if (fs::exists(path / kSingleFileName, ec)) return LoadSingleFile(path / kSingleFileName);
  if (fs::exists(path / kIndexFileName, ec)) return LoadShardedModel(path, path / kIndexFileName);
  return absl::NotFoundError(absl::StrCat(path.string(), ": no ", kSingleFileName, " or ",
                                          kIndexFileName, " in this directory"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const fs::path& path) {
  ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  absl::StatusOr<SafetensorsHeader> header = ParseSafetensorsHeader(mapped->bytes());
  if (!header.ok()) return Prefixed(path, header.status());
  return std::unique_ptr<SafetensorsFile>(
      new SafetensorsFile(std::move(mapped), *std::move(header)));
}

const TensorEntry* SafetensorsFile::Find(std::string_view name) const {
  const auto it = std::lower_bound(
      header_.tensors.begin(), header_.tensors.end(), name,
      [](const TensorEntry& entry, std::string_view key) { return entry.name < key; });
  return it != header_.tensors.end() && it->name == name ? &*it : nullptr;
}

TensorView SafetensorsFile::View(const TensorEntry& entry) const {
  return TensorView{
      entry.dtype, entry.shape,
      file_->bytes().subspan(header_.data_offset + entry.begin, entry.end - entry.begin)};
}

absl::StatusOr<TensorView> SafetensorsFile::Get(std::string_view name) const {
  const TensorEntry* entry = Find(name);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(path().string(), ": no tensor named ", Quote(name)));
  }
  return View(*entry);
}

absl::StatusOr<SafetensorsModel> SafetensorsModel::Open(const fs::path& path) {
  SafetensorsModel model;
  ASSIGN_OR_RETURN(LoadedFiles loaded, LoadModel(path, &model.directory_));
  model.files_ = std::move(loaded.files);
  model.file_of_ = std::move(loaded.file_of);
  model.metadata_ = std::move(loaded.metadata);
  model.names_.reserve(model.file_of_.size());
  for (const auto& [name, unused] : model.file_of_) model.names_.push_back(name);
  return model;
}

const SafetensorsFile* SafetensorsModel::FileOf(std::string_view name) const {
  const auto it = file_of_.find(name);
  return it == file_of_.end() ? nullptr : files_[it->second].get();
}

const TensorEntry* SafetensorsModel::Find(std::string_view name) const {
  const SafetensorsFile* file = FileOf(name);
  return file == nullptr ? nullptr : file->Find(name);
}

absl::StatusOr<TensorView> SafetensorsModel::Get(std::string_view name) const {
  const SafetensorsFile* file = FileOf(name);
  if (file == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("model in ", directory_.string(), " has no tensor named ", Quote(name)));
  }
  return file->Get(name);
}

}  // namespace glvq
