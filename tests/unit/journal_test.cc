// The coordinator's journal (coordinator/journal.h): records come back in
// order after a reopen, a torn tail is dropped and other damage refused, and
// group commit: concurrent appenders are all made durable, one flush covers
// every record appended while the previous one ran, the hook that makes
// what records refer to durable runs before each batch is written, and a
// failed flush fails every commit waiting on it (and every later one) with
// a clear status.
#include "coordinator/journal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "tests/support/test_support.h"

namespace glvq::coordinator {
namespace {

namespace fs = std::filesystem;
using glvq::testing::ScratchDir;

v1::JournalRecord Record(const std::string& task_id) {
  v1::JournalRecord r;
  r.mutable_committed()->set_job_id("job-000001");
  r.mutable_committed()->set_task_id(task_id);
  return r;
}

std::vector<std::string> TaskIds(const std::vector<v1::JournalRecord>& records) {
  std::vector<std::string> ids;
  for (const v1::JournalRecord& r : records) ids.push_back(r.committed().task_id());
  return ids;
}

std::vector<v1::JournalRecord> Replay(const fs::path& path) {
  std::vector<v1::JournalRecord> records;
  auto journal = Journal::Open(path, &records);
  EXPECT_TRUE(journal.ok()) << journal.status();
  return records;
}

std::unique_ptr<Journal> OpenEmpty(const fs::path& path, JournalOptions options = {}) {
  std::vector<v1::JournalRecord> records;
  auto journal = Journal::Open(path, &records, std::move(options));
  EXPECT_TRUE(journal.ok()) << journal.status();
  EXPECT_TRUE(records.empty());
  return journal.ok() ? *std::move(journal) : nullptr;
}

TEST(JournalTest, SyncedRecordsComeBackInOrder) {
  ScratchDir dir;
  {
    auto journal = OpenEmpty(dir / "journal");
    for (const char* id : {"a", "b", "c"}) {
      auto seq = journal->Append(Record(id));
      ASSERT_TRUE(seq.ok()) << seq.status();
    }
    EXPECT_EQ(journal->flushes(), 0u) << "Append does no I/O";
    ASSERT_TRUE(journal->SyncAll().ok());
    EXPECT_EQ(journal->flushes(), 1u);
    EXPECT_TRUE(journal->Sync(2).ok()) << "already durable: no flush";
    EXPECT_EQ(journal->flushes(), 1u);
  }
  EXPECT_EQ(TaskIds(Replay(dir / "journal")), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(JournalTest, ClosingFlushesWhatIsStillBuffered) {
  ScratchDir dir;
  {
    auto journal = OpenEmpty(dir / "journal");
    ASSERT_TRUE(journal->Append(Record("a")).ok());
  }
  EXPECT_EQ(TaskIds(Replay(dir / "journal")), std::vector<std::string>{"a"});
}

TEST(JournalTest, ATornTailIsDroppedAndDamageElsewhereRefused) {
  ScratchDir dir;
  {
    auto journal = OpenEmpty(dir / "journal");
    for (const char* id : {"a", "b", "c"}) ASSERT_TRUE(journal->Append(Record(id)).ok());
    ASSERT_TRUE(journal->SyncAll().ok());
  }
  const uint64_t size = fs::file_size(dir / "journal");
  fs::resize_file(dir / "journal", size - 3);  // a crash in the middle of the last write
  EXPECT_EQ(TaskIds(Replay(dir / "journal")), (std::vector<std::string>{"a", "b"}));
  const uint64_t intact = fs::file_size(dir / "journal");
  EXPECT_LT(intact, size - 3) << "the torn record was cut off";
  {
    // Appends continue after the intact records.
    std::vector<v1::JournalRecord> records;
    auto journal = Journal::Open(dir / "journal", &records);
    ASSERT_TRUE(journal.ok());
    ASSERT_TRUE((*journal)->Append(Record("d")).ok());
  }
  EXPECT_EQ(TaskIds(Replay(dir / "journal")), (std::vector<std::string>{"a", "b", "d"}));

  std::string text = *ReadFileToString(dir / "journal");
  text[10] ^= 0x40;  // inside the first record
  glvq::testing::WriteFile(dir / "journal", text);
  std::vector<v1::JournalRecord> records;
  EXPECT_EQ(Journal::Open(dir / "journal", &records).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(JournalTest, ManyConcurrentAppendersAreAllDurableInTheOrderOfTheirNumbers) {
  constexpr int kThreads = 8, kEach = 50;
  ScratchDir dir;
  std::vector<std::vector<std::pair<uint64_t, std::string>>> appended(kThreads);
  uint64_t flushes = 0;
  {
    auto journal = OpenEmpty(dir / "journal");
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          const std::string id = absl::StrCat(t, "/", i);
          auto seq = journal->Append(Record(id));
          ASSERT_TRUE(seq.ok()) << seq.status();
          ASSERT_TRUE(journal->Sync(*seq).ok());  // acknowledged: durable from here on
          appended[t].emplace_back(*seq, id);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    flushes = journal->flushes();
  }
  EXPECT_GE(flushes, 1u);
  EXPECT_LE(flushes, uint64_t{kThreads * kEach});
  // Record number n is the n-th record of the file.
  std::vector<std::string> expected(kThreads * kEach);
  for (const auto& mine : appended) {
    ASSERT_EQ(mine.size(), size_t{kEach});
    for (const auto& [seq, id] : mine) {
      ASSERT_GE(seq, 1u);
      ASSERT_LE(seq, expected.size());
      expected[seq - 1] = id;
    }
  }
  EXPECT_EQ(TaskIds(Replay(dir / "journal")), expected);
}

TEST(JournalTest, WhatRecordsReferToIsMadeDurableBeforeEachBatchIsWritten) {
  ScratchDir dir;
  std::vector<uint64_t> sizes_seen;  // the journal's size when the hook ran
  JournalOptions options;
  options.before_write = [&] { sizes_seen.push_back(fs::file_size(dir / "journal")); };
  auto journal = OpenEmpty(dir / "journal", options);
  ASSERT_TRUE(journal->Append(Record("a")).ok());
  ASSERT_TRUE(journal->Append(Record("b")).ok());
  ASSERT_TRUE(journal->SyncAll().ok());
  const uint64_t after_first = fs::file_size(dir / "journal");
  ASSERT_TRUE(journal->Append(Record("c")).ok());
  ASSERT_TRUE(journal->SyncAll().ok());
  EXPECT_EQ(sizes_seen, (std::vector<uint64_t>{0, after_first}));
}

// A flush that blocks until the test lets it go, counting the flushes.
struct GatedFlush {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int calls = 0;

  JournalOptions Options() {
    JournalOptions options;
    options.sync = [this](int fd) {
      std::unique_lock<std::mutex> lock(mu);
      ++calls;
      cv.notify_all();
      cv.wait(lock, [this] { return open; });
      return ::fdatasync(fd);
    };
    return options;
  }
  void WaitForCalls(int n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return calls >= n; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

TEST(JournalTest, OneFlushCoversEveryRecordAppendedWhileThePreviousOneRan) {
  ScratchDir dir;
  GatedFlush gate;
  auto journal = OpenEmpty(dir / "journal", gate.Options());
  ASSERT_TRUE(journal->Append(Record("first")).ok());
  std::thread first([&] { EXPECT_TRUE(journal->Sync(1).ok()); });
  gate.WaitForCalls(1);  // the first flush is under way (and held)
  std::vector<std::thread> waiters;
  for (int i = 0; i < 9; ++i) {
    auto seq = journal->Append(Record(absl::StrCat("later-", i)));
    ASSERT_TRUE(seq.ok());
    waiters.emplace_back([&, seq = *seq] { EXPECT_TRUE(journal->Sync(seq).ok()); });
  }
  gate.Open();
  first.join();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(journal->flushes(), 2u) << "the nine later records share one flush";
  EXPECT_EQ(gate.calls, 2);
  journal.reset();
  EXPECT_EQ(Replay(dir / "journal").size(), 10u);
}

TEST(JournalTest, AFailedFlushFailsTheWaitingCommitsAndEveryLaterOne) {
  ScratchDir dir;
  std::atomic<int> calls = 0;
  JournalOptions options;
  options.sync = [&](int fd) {
    if (++calls == 1) return ::fdatasync(fd);
    errno = EIO;
    return -1;
  };
  auto journal = OpenEmpty(dir / "journal", options);
  auto first = journal->Append(Record("durable"));
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(journal->Sync(*first).ok());

  std::vector<uint64_t> seqs;
  for (int i = 0; i < 3; ++i) seqs.push_back(*journal->Append(Record(absl::StrCat("lost-", i))));
  std::vector<absl::Status> results(seqs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seqs.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = journal->Sync(seqs[i]); });
  }
  for (std::thread& t : threads) t.join();
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find("cannot flush"), absl::string_view::npos) << s;
    EXPECT_NE(s.message().find("Input/output error"), absl::string_view::npos) << s;
    EXPECT_NE(s.message().find("restart the coordinator"), absl::string_view::npos) << s;
  }
  EXPECT_EQ(calls.load(), 2) << "one failed flush, not retried";
  // Nothing more is accepted; what was durable before stays acknowledged.
  EXPECT_EQ(journal->Append(Record("after")).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(journal->SyncAll().code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(journal->Sync(*first).ok());
}

}  // namespace
}  // namespace glvq::coordinator
