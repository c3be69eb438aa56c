#include "common/base/file_util.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "tests/support/test_support.h"

namespace glvq {
namespace {
namespace fs = std::filesystem;
using testing::ScratchDir;

size_t EntriesIn(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicWrite, WritesAndReplaces) {
  ScratchDir dir;
  ASSERT_TRUE(AtomicWriteString(dir / "a.txt", "first").ok());
  ASSERT_TRUE(AtomicWriteString(dir / "a.txt", "second").ok());
  auto text = ReadFileToString(dir / "a.txt");
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "second");
  EXPECT_EQ(EntriesIn(dir.path()), 1u);
}

TEST(AtomicWrite, FailureLeavesOldContentAndNoTemporary) {
  ScratchDir dir;
  ASSERT_TRUE(AtomicWriteString(dir / "a.txt", "keep").ok());
  absl::Status s = AtomicWriteFile(dir / "a.txt", [](FileSink& sink) {
    EXPECT_TRUE(sink.Write("partial").ok());
    return absl::DataLossError("producer failed");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(*ReadFileToString(dir / "a.txt"), "keep");
  EXPECT_EQ(EntriesIn(dir.path()), 1u);
}

TEST(AtomicWrite, MissingDirectoryIsAnError) {
  ScratchDir dir;
  absl::Status s = AtomicWriteString(dir / "no" / "such" / "file", "x");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

// A full disk is reported against the file being written, not a temporary.
TEST(FileSink, AFullDiskNamesTheFile) {
  const int fd = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << "no /dev/full";
  FileSink sink(fd, "/srv/out/model.safetensors");
  const absl::Status s = sink.Write(std::string_view("bytes"));
  ::close(fd);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_NE(s.message().find("/srv/out/model.safetensors"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("No space left"), absl::string_view::npos) << s;
}

TEST(MappedFile, MapsContentsAndRejectsNonFiles) {
  ScratchDir dir;
  testing::WriteFile(dir / "f", "hello");
  auto f = MappedFile::Open(dir / "f");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*f)->bytes().size(), 5u);
  EXPECT_EQ(static_cast<char>((*f)->bytes()[4]), 'o');
  testing::WriteFile(dir / "empty", "");
  auto e = MappedFile::Open(dir / "empty");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE((*e)->bytes().empty());
  EXPECT_EQ(MappedFile::Open(dir / "missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MappedFile::Open(dir.path()).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(MappedFile, RefusesAFifoWithoutBlocking) {
  // Opening a FIFO for reading blocks until a writer comes: a hostile model
  // path once hung `glvq validate` and a SubmitJob thread. (If this
  // regresses, the test hangs and CTest's timeout fails it.)
  ScratchDir dir;
  ASSERT_EQ(::mkfifo((dir / "pipe").c_str(), 0600), 0);
  const absl::Status s = MappedFile::Open(dir / "pipe").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("not a regular file"), std::string_view::npos) << s;
  EXPECT_EQ(ReadFileToString(dir / "pipe").status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(ReadFileToString, EnforcesLimit) {
  ScratchDir dir;
  testing::WriteFile(dir / "f", std::string(100, 'x'));
  EXPECT_EQ(ReadFileToString(dir / "f", 99).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(ReadFileToString(dir / "f", 100).ok());
}

TEST(WriteDirectoryAtomically, AppearsCompleteOrNotAtAll) {
  ScratchDir dir;
  const fs::path out = dir / "a" / "b";  // parents are created
  ASSERT_TRUE(WriteDirectoryAtomically(out, [](const fs::path& tmp) {
                EXPECT_NE(tmp.filename().string().find("b.tmp."), std::string::npos);
                return AtomicWriteString(tmp / "f", "x");
              }).ok());
  EXPECT_EQ(*ReadFileToString(out / "f"), "x");
  const mode_t mask = ::umask(0);
  ::umask(mask);
  EXPECT_EQ(static_cast<unsigned>(fs::status(out).permissions() & fs::perms::all),
            0777u & ~static_cast<unsigned>(mask))
      << "usual directory permissions, not mkdtemp's 0700";
  const absl::Status exists = WriteDirectoryAtomically(out, [](const fs::path&) {
    return absl::OkStatus();
  });
  EXPECT_EQ(exists.code(), absl::StatusCode::kFailedPrecondition);
  const fs::path failed = dir / "failed";
  const absl::Status s = WriteDirectoryAtomically(failed, [](const fs::path& tmp) {
    EXPECT_TRUE(AtomicWriteString(tmp / "half", "written").ok());
    return absl::DataLossError("fill failed");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(fs::exists(failed));
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos)
        << "temporary removed: " << entry.path();
  }
}

}  // namespace
}  // namespace glvq
