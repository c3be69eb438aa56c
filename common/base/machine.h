// What this process may use of the machine, container limits included: a
// pod with `cpu: 4` on a 64-core node gets 4 threads, and plans against its
// memory limit, not the node's memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace glvq {

// Hardware threads, capped by the cgroup v2 CPU quota (cpu.max
// "quota period", rounded up) of this process's cgroup; at least 1.
int UsableCores();

// Physical memory, capped by the cgroup v2 memory.max of this process's
// cgroup, in bytes.
uint64_t UsableMemoryBytes();

namespace internal {
// Parsers of the cgroup files' text, exposed for tests. nullopt: "max"
// (no limit) or malformed.
std::optional<double> ParseCpuMax(std::string_view text);   // quota / period, in cores
std::optional<uint64_t> ParseMemoryMax(std::string_view text);  // bytes
}  // namespace internal

}  // namespace glvq
