// Reading safetensors files and models (single file or sharded) through
// read-only memory maps; tensor views are zero-copy.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/file_util.h"
#include "common/safetensors/header.h"
#include "common/tensor/tensor_view.h"

namespace glvq {

// One validated safetensors file, mapped for the object's lifetime.
class SafetensorsFile {
 public:
  // Maps and validates `path`. Errors name the file: NOT_FOUND if missing,
  // INVALID_ARGUMENT if malformed (see ParseSafetensorsHeader).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(
      const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const SafetensorsHeader& header() const { return header_; }
  const std::vector<TensorEntry>& tensors() const { return header_.tensors; }
  uint64_t file_size() const { return file_->bytes().size(); }

  // nullptr if there is no tensor called `name`.
  const TensorEntry* Find(std::string_view name) const;
  // View of a tensor of this file; the view borrows this object's mapping.
  TensorView View(const TensorEntry& entry) const;
  // NOT_FOUND if absent.
  absl::StatusOr<TensorView> Get(std::string_view name) const;

 private:
  SafetensorsFile(std::unique_ptr<MappedFile> file, SafetensorsHeader header)
      : file_(std::move(file)), header_(std::move(header)) {}
  std::unique_ptr<MappedFile> file_;
  SafetensorsHeader header_;
};

// A model's weights: one safetensors file, a directory holding
// `model.safetensors`, or a directory holding `model.safetensors.index.json`
// and the shards it names. The index is validated against the shards: every
// shard name stays inside the directory (no absolute paths, no "..", no
// symlink escape), every listed tensor exists in its shard, every shard
// tensor is listed, no tensor appears twice.
class SafetensorsModel {
 public:
  static absl::StatusOr<SafetensorsModel> Open(const std::filesystem::path& path);

  // Directory holding the model (the file's directory for a single file).
  const std::filesystem::path& directory() const { return directory_; }
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  // All tensor names, sorted.
  const std::vector<std::string>& tensor_names() const { return names_; }
  // Union of the files' `__metadata__` (index metadata for sharded models).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The file holding `name`, or nullptr.
  const SafetensorsFile* FileOf(std::string_view name) const;
  const TensorEntry* Find(std::string_view name) const;
  absl::StatusOr<TensorView> Get(std::string_view name) const;

 private:
  std::filesystem::path directory_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<std::string> names_;
  std::map<std::string, size_t, std::less<>> file_of_;  // name -> index in files_
  std::map<std::string, std::string> metadata_;
};

}  // namespace glvq
