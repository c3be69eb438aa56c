#include "coordinator/job_store.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/rpc/grpc_util.h"
#include "common/rpc/result_codec.h"

namespace glvq::coordinator {
namespace {

std::string U32(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  return s;
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::filesystem::path& state_dir,
                                                         std::vector<v1::JournalRecord>* records,
                                                         JournalOptions journal_options) {
  std::error_code ec;
  std::filesystem::create_directories(state_dir / "results", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create state dir ", state_dir.string(), ": ", ec.message()));
  }
  // Before the journal is read: a second coordinator on a live state dir
  // would re-open its jobs and append to the same journal.
  ASSIGN_OR_RETURN(std::unique_ptr<DirectoryLock> lock, DirectoryLock::Acquire(state_dir));
  auto pending = std::make_shared<PendingDirectories>();
  journal_options.before_write = [pending, next = std::move(journal_options.before_write)] {
    pending->SyncAll();
    if (next) next();
  };
  ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal, Journal::Open(state_dir / "journal", records,
                                                                 std::move(journal_options)));
  return std::unique_ptr<JobStore>(
      new JobStore(state_dir, std::move(lock), pending, std::move(journal)));
}

absl::StatusOr<uint64_t> JobStore::Append(v1::JournalRecord record) {
  *record.mutable_time() = rpc::ToProto(absl::Now());
  return journal_->Append(record);
}

std::filesystem::path JobStore::ResultPath(const std::string& job_id,
                                           const std::string& task_id) const {
  return state_dir_ / "results" / job_id / (task_id + ".result");
}

absl::Status JobStore::WriteResult(const std::string& job_id, const v1::TaskResultHeader& header,
                                   std::string_view payload) {
  const std::filesystem::path path = ResultPath(job_id, header.task_id());
  std::error_code ec;
  const bool created = std::filesystem::create_directories(path.parent_path(), ec);
  const std::string head = header.SerializeAsString();
  const auto fill = [&](FileSink& sink) -> absl::Status {
    RETURN_IF_ERROR(sink.Write(U32(static_cast<uint32_t>(head.size()))));
    RETURN_IF_ERROR(sink.Write(head));
    return sink.Write(payload);
  };
  RETURN_IF_ERROR(AtomicWriteFile(path, fill, /*sync_directory=*/false));
  pending_->Add(path.parent_path());
  if (created) pending_->Add(path.parent_path().parent_path());
  return absl::OkStatus();
}

void JobStore::PendingDirectories::Add(const std::filesystem::path& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  dirs_.insert(dir);
}

void JobStore::PendingDirectories::SyncAll() {
  std::set<std::filesystem::path> dirs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirs.swap(dirs_);
  }
  for (const std::filesystem::path& dir : dirs) SyncDirectory(dir);
}

absl::StatusOr<StoredResult> JobStore::ReadResult(const std::string& job_id,
                                                  const std::string& task_id) const {
  const std::filesystem::path path = ResultPath(job_id, task_id);
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, uint64_t{1} << 40));
  uint32_t head_size = 0;
  for (int i = 3; i >= 0 && text.size() >= 4; --i) {
    head_size = (head_size << 8) | static_cast<uint8_t>(text[static_cast<size_t>(i)]);
  }
  StoredResult r;
  if (text.size() < 4 || text.size() - 4 < head_size ||
      !r.header.ParseFromArray(text.data() + 4, static_cast<int>(head_size))) {
    return absl::DataLossError(absl::StrCat(path.string(), ": damaged result file"));
  }
  r.payload = text.substr(4 + head_size);
  RETURN_IF_ERROR(rpc::CheckPayload(r.header, r.payload));
  return r;
}

void JobStore::RemoveResult(const std::string& job_id, const std::string& task_id) {
  std::error_code ec;
  std::filesystem::remove(ResultPath(job_id, task_id), ec);
}

void JobStore::RemoveResults(const std::string& job_id) {
  std::error_code ec;
  std::filesystem::remove_all(state_dir_ / "results" / job_id, ec);
}

}  // namespace glvq::coordinator
