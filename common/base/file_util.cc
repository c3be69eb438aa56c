#include "common/base/file_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"

namespace glvq {
namespace {

absl::Status ErrnoStatus(const char* what, const std::filesystem::path& p) {
  const int err = errno;
  std::string msg = absl::StrCat(p.string(), ": ", what, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(msg);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(msg);
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  return absl::InternalError(msg);
}

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// The status for OS error `err` while doing `what`.
absl::Status ErrnoCodeStatus(int err, absl::string_view what) {
  const std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOENT: return absl::NotFoundError(msg);
    case EACCES:
    case EPERM: return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT: return absl::ResourceExhaustedError(msg);
    case EEXIST:
    case ENOTEMPTY: return absl::FailedPreconditionError(msg);
    default: return absl::InternalError(msg);
  }
}

// Renames a directory into place unless the target exists (even empty).
absl::Status RenameNoReplace(const std::filesystem::path& from,
                             const std::filesystem::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) {
    return absl::OkStatus();
  }
  if (errno != EINVAL && errno != ENOSYS) {
    return ErrnoCodeStatus(errno, absl::StrCat("cannot rename ", from.string(), " to ",
                                               to.string()));
  }
  // Filesystem without RENAME_NOREPLACE: check, then rename (racy, best effort).
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(to, ec))) {
    return absl::FailedPreconditionError(absl::StrCat(to.string(), " already exists"));
  }
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return ErrnoCodeStatus(errno, absl::StrCat("cannot rename ", from.string(), " to ",
                                               to.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::filesystem::path> PrepareTarget(const std::filesystem::path& out_dir) {
  std::filesystem::path target = out_dir.lexically_normal();
  if (!target.has_filename()) target = target.parent_path();
  if (target.empty()) return absl::InvalidArgumentError("empty output directory path");
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(target, ec))) {
    return absl::FailedPreconditionError(absl::StrCat(
        target.string(), " already exists; refusing to overwrite it"));
  }
  const std::filesystem::path parent =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    return ErrnoCodeStatus(ec.value(), absl::StrCat("cannot create ", parent.string()));
  }
  return target;
}

std::string TempSuffix() {
  std::random_device rd;  // only names a temp file; never affects output bytes
  return absl::StrCat(".tmp.", ::getpid(), ".", rd());
}

}  // namespace

absl::StatusOr<std::unique_ptr<MappedFile>> MappedFile::Open(
    const std::filesystem::path& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise block until a
  // writer appears (forever, for a hostile model path); the type check
  // below then refuses it. The flag changes nothing for regular files.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus("cannot open", path);
  FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("cannot stat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path.string(), ": not a regular file"));
  }
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    return std::unique_ptr<MappedFile>(new MappedFile(path, nullptr, 0));
  }
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (addr == MAP_FAILED) return ErrnoStatus("cannot mmap", path);
  return std::unique_ptr<MappedFile>(
      new MappedFile(path, static_cast<const std::byte*>(addr), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), size_);
}

absl::Status FileSink::Write(std::span<const std::byte> bytes) {
  const std::byte* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write failed", path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  written_ += bytes.size();
  return absl::OkStatus();
}

absl::Status FileSink::Write(std::string_view text) {
  return Write(std::as_bytes(std::span(text.data(), text.size())));
}

void SyncDirectory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

absl::Status AtomicWriteFile(
    const std::filesystem::path& path,
    const std::function<absl::Status(FileSink&)>& fill, bool sync_directory) {
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const std::filesystem::path tmp = path.string() + TempSuffix();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", path);  // the name the caller knows
  FdCloser closer(fd);
  auto fail = [&](absl::Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  FileSink sink(fd, path);
  if (absl::Status s = fill(sink); !s.ok()) return fail(s);
  if (::fsync(fd) != 0) return fail(ErrnoStatus("fsync failed", tmp));
  if (::close(closer.release()) != 0) return fail(ErrnoStatus("close failed", tmp));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail(ErrnoStatus("cannot rename temporary file into place", path));
  }
  if (sync_directory) SyncDirectory(dir);
  return absl::OkStatus();
}

absl::Status AtomicWriteString(const std::filesystem::path& path,
                               std::string_view contents) {
  return AtomicWriteFile(path, [&](FileSink& sink) { return sink.Write(contents); });
}

absl::Status WriteDirectoryAtomically(
    const std::filesystem::path& out_dir,
    const std::function<absl::Status(const std::filesystem::path&)>& fill) {
  ASSIGN_OR_RETURN(std::filesystem::path target, PrepareTarget(out_dir));
  // Not mkdtemp: it makes the directory 0700, and the finished output
  // should carry the usual permissions (0777 less the umask).
  std::filesystem::path tmp;
  for (int attempt = 0;; ++attempt) {
    tmp = target.string() + TempSuffix();
    if (::mkdir(tmp.c_str(), 0777) == 0) break;
    if (errno != EEXIST || attempt >= 100) {
      return ErrnoCodeStatus(errno, absl::StrCat("cannot create a temporary directory beside ",
                                                 target.string()));
    }
  }
  absl::Status status = fill(tmp);
  if (status.ok()) {
    SyncDirectory(tmp);
    status = RenameNoReplace(tmp, target);
  }
  if (!status.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp, ec);
    return status;
  }
  SyncDirectory(target.has_parent_path() ? target.parent_path() : std::filesystem::path("."));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path,
                                             uint64_t max_bytes) {
  ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  if (file->bytes().size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        path.string(), ": file is ", file->bytes().size(),
        " bytes, more than the limit of ", max_bytes));
  }
  return std::string(reinterpret_cast<const char*>(file->bytes().data()),
                     file->bytes().size());
}

}  // namespace glvq
