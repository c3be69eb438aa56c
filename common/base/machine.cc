#include "common/base/machine.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>


namespace glvq {
namespace {

namespace fs = std::filesystem;

// The first line of a small text file ("" if unreadable). Only regular
// files under /proc and /sys are read here.
std::string FirstLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// This process's cgroup v2 directory: /sys/fs/cgroup + the path after
// "0::" in /proc/self/cgroup (just /sys/fs/cgroup in most containers).
fs::path CgroupDir() {
  const fs::path root = "/sys/fs/cgroup";
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    std::error_code ec;
    const fs::path dir = root / fs::path(line.substr(3)).relative_path();
    if (fs::exists(dir / "cpu.max", ec) || fs::exists(dir / "memory.max", ec)) return dir;
  }
  return root;
}

}  // namespace

namespace internal {

// The number at the start of `text` after leading spaces; `text` moves past it.
template <typename T>
std::optional<T> TakeNumber(std::string_view& text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<size_t>(end - text.data()));
  return value;
}

bool OnlySpace(std::string_view text) {
  return text.find_first_not_of(" \t\n") == std::string_view::npos;
}

std::optional<double> ParseCpuMax(std::string_view text) {
  const std::optional<double> quota = TakeNumber<double>(text);  // "max": no quota
  const std::optional<double> period = TakeNumber<double>(text);
  if (!quota || !period || !OnlySpace(text) || !(*quota > 0) || !(*period > 0)) {
    return std::nullopt;
  }
  return *quota / *period;
}

std::optional<uint64_t> ParseMemoryMax(std::string_view text) {
  const std::optional<uint64_t> bytes = TakeNumber<uint64_t>(text);  // "max": no limit
  if (!bytes || *bytes == 0 || !OnlySpace(text)) return std::nullopt;
  return bytes;
}

}  // namespace internal

int UsableCores() {
  static const int cores = [] {
    int n = std::max(static_cast<int>(std::thread::hardware_concurrency()), 1);
    if (const auto quota = internal::ParseCpuMax(FirstLine(CgroupDir() / "cpu.max"))) {
      n = std::min(n, std::max(1, static_cast<int>(std::ceil(*quota))));
    }
    return n;
  }();
  return cores;
}

uint64_t UsableMemoryBytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  uint64_t bytes = pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : 0;
  if (const auto limit = internal::ParseMemoryMax(FirstLine(CgroupDir() / "memory.max"))) {
    bytes = bytes == 0 ? *limit : std::min(bytes, *limit);
  }
  return bytes;
}

}  // namespace glvq
