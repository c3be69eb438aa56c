#include "coordinator/journal.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"
#include "common/base/file_util.h"
#include "common/base/logging.h"
#include "common/base/status_macros.h"

namespace glvq::coordinator {
namespace {

constexpr size_t kFrameBytes = 8;
constexpr uint32_t kMaxRecordBytes = 256u << 20;

uint32_t LoadU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void StoreU32(uint32_t v, std::string* out) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

absl::Status ErrnoError(const std::string& what, const std::filesystem::path& path) {
  return absl::InternalError(absl::StrCat(what, " ", path.string(), ": ", std::strerror(errno)));
}

// Parses the framed records of `text`; returns how many bytes were intact.
absl::StatusOr<size_t> ParseRecords(const std::string& text, const std::filesystem::path& path,
                                    std::vector<v1::JournalRecord>* records) {
  size_t at = 0;
  while (at < text.size()) {
    if (text.size() - at < kFrameBytes) break;  // torn frame
    const uint32_t length = LoadU32(text.data() + at), crc = LoadU32(text.data() + at + 4);
    const bool complete = length <= kMaxRecordBytes && text.size() - at - kFrameBytes >= length;
    const std::string_view body(text.data() + at + kFrameBytes, complete ? length : 0);
    const bool intact =
        complete && Crc32c(std::as_bytes(std::span(body.data(), body.size()))) == crc;
    if (!intact) {
      // Only the last record can be torn by a crash.
      if (!complete || at + kFrameBytes + length == text.size()) break;
      return absl::DataLossError(absl::StrCat(path.string(), ": record at byte ", at,
                                              " is damaged and is not the last one"));
    }
    v1::JournalRecord& r = records->emplace_back();
    if (!r.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
      return absl::DataLossError(
          absl::StrCat(path.string(), ": record at byte ", at, " does not parse"));
    }
    at += kFrameBytes + length;
  }
  return at;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(const std::filesystem::path& path,
                                                       std::vector<v1::JournalRecord>* records,
                                                       JournalOptions options) {
  std::string text;
  if (std::filesystem::exists(path)) {
    ASSIGN_OR_RETURN(text, ReadFileToString(path, uint64_t{1} << 40));
  }
  ASSIGN_OR_RETURN(const size_t intact, ParseRecords(text, path, records));
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot open journal", path);
  std::unique_ptr<Journal> journal(new Journal(path, fd, std::move(options)));
  if (intact != text.size() && ::ftruncate(fd, static_cast<off_t>(intact)) != 0) {
    return ErrnoError("cannot drop the torn tail of", path);
  }
  return journal;
}

Journal::Journal(std::filesystem::path path, int fd, JournalOptions options)
    : path_(std::move(path)), fd_(fd), options_(std::move(options)) {}

Journal::~Journal() {
  if (absl::Status s = SyncAll(); !s.ok()) {
    GLVQ_LOG(kError) << "journal " << path_.string() << ": records not flushed at exit: " << s;
  }
  ::close(fd_);
}

absl::StatusOr<uint64_t> Journal::Append(const v1::JournalRecord& record) {
  std::string body;
  if (!record.SerializeToString(&body) || body.size() > kMaxRecordBytes) {
    return absl::InternalError("journal record does not serialize");
  }
  const uint32_t crc = Crc32c(std::as_bytes(std::span(body.data(), body.size())));
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.ok()) return failed_;
  StoreU32(static_cast<uint32_t>(body.size()), &buffer_);
  StoreU32(crc, &buffer_);
  buffer_ += body;
  return ++appended_;
}

absl::Status Journal::Sync(uint64_t seq) {
  std::unique_lock<std::mutex> lock(mu_);
  while (durable_ < seq) {
    if (!failed_.ok()) return failed_;
    if (flushing_) {
      flushed_.wait(lock);
      continue;
    }
    // This thread flushes everything buffered so far, for every waiter.
    std::string frames;
    frames.swap(buffer_);
    const uint64_t last = appended_;
    flushing_ = true;
    lock.unlock();
    const absl::Status s = WriteAndFlush(frames, last);
    lock.lock();
    flushing_ = false;
    ++flushes_;
    if (s.ok()) {
      durable_ = last;
    } else {
      failed_ = s;
    }
    flushed_.notify_all();
  }
  return absl::OkStatus();
}

absl::Status Journal::SyncAll() {
  uint64_t last = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last = appended_;
  }
  return Sync(last);
}

uint64_t Journal::flushes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flushes_;
}

absl::Status Journal::WriteAndFlush(const std::string& frames, uint64_t last) {
  auto fail = [&](const char* what) {
    return absl::InternalError(absl::StrCat(
        "journal ", path_.string(), ": cannot ", what, " records up to #", last, ": ",
        std::strerror(errno),
        "; no further commit can be made durable: restart the coordinator (it replays every "
        "acknowledged record)"));
  };
  if (options_.before_write) options_.before_write();
  for (size_t done = 0; done < frames.size();) {
    const ssize_t n = ::write(fd_, frames.data() + done, frames.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("append");
    done += static_cast<size_t>(n);
  }
  const int rc = options_.sync ? options_.sync(fd_) : ::fdatasync(fd_);
  if (rc != 0) return fail("flush");
  return absl::OkStatus();
}

}  // namespace glvq::coordinator
