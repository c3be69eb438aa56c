// Files: read-only memory maps and atomic writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace glvq {

// A read-only memory map of a whole file. The mapping lives as long as the
// object; views into bytes() must not outlive it. An empty file maps to an
// empty span (mmap of length 0 is not allowed, so nothing is mapped).
class MappedFile {
 public:
  // NOT_FOUND if the file does not exist, FAILED_PRECONDITION if it is not a
  // regular file, INTERNAL on other OS errors.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(
      const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile(std::filesystem::path path, const std::byte* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::filesystem::path path_;
  const std::byte* data_;
  size_t size_;
};

// Sequential writer handed to AtomicWriteFile's callback.
class FileSink {
 public:
  // `fd` is written, not owned; `path` (the file being written, as the
  // caller names it) only labels errors.
  FileSink(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}
  absl::Status Write(std::span<const std::byte> bytes);
  absl::Status Write(std::string_view text);
  uint64_t bytes_written() const { return written_; }

 private:
  int fd_;
  std::filesystem::path path_;
  uint64_t written_ = 0;
};

// Writes `path` atomically: `fill` writes into a temporary file in the same
// directory, which is fsync'd and renamed over `path` only if `fill` returned
// OK (the directory is fsync'd too, unless `sync_directory` is false: then
// the rename is durable only once the caller has called SyncDirectory, which
// lets one directory fsync cover many files). On any error the temporary is
// removed and `path` is left as it was. Readers never see a partial file.
absl::Status AtomicWriteFile(
    const std::filesystem::path& path,
    const std::function<absl::Status(FileSink&)>& fill, bool sync_directory = true);

// Fsyncs directory `dir`, making the renames and creations in it durable
// (best effort: some filesystems refuse directory fsync).
void SyncDirectory(const std::filesystem::path& dir);

// Convenience: atomically writes `contents` to `path`.
absl::Status AtomicWriteString(const std::filesystem::path& path,
                               std::string_view contents);

// Creates directory `out_dir` all at once: `fill` writes the contents into a
// sibling temporary directory "<out_dir>.tmp.PID.N" (its argument), which
// is fsync'd and renamed into place without replacing anything only if
// `fill` returned OK, and removed otherwise. So `out_dir` either does not
// exist or is complete. FAILED_PRECONDITION if `out_dir` exists (even
// empty); missing parent directories are created.
absl::Status WriteDirectoryAtomically(
    const std::filesystem::path& out_dir,
    const std::function<absl::Status(const std::filesystem::path&)>& fill);

// Reads a whole (small) file into a string. NOT_FOUND if missing; refuses
// files larger than `max_bytes` with RESOURCE_EXHAUSTED.
absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path,
                                             uint64_t max_bytes = 64u << 20);

}  // namespace glvq
