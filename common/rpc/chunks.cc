#include "common/rpc/chunks.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/crc32c.h"

namespace glvq::rpc {

std::span<const std::byte> AsBytes(std::string_view s) {
  return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

v1::Chunk MakeChunk(std::span<const std::byte> piece, uint64_t offset) {
  v1::Chunk c;
  c.set_offset(offset);
  c.set_data(reinterpret_cast<const char*>(piece.data()), piece.size());
  c.set_crc32c(Crc32c(piece));
  return c;
}

bool ForEachChunk(std::span<const std::byte> data, uint64_t start,
                  const std::function<bool(v1::Chunk&)>& emit, size_t max_bytes) {
  for (uint64_t at = start; at < data.size();) {
    const size_t n = std::min<uint64_t>(max_bytes, data.size() - at);
    v1::Chunk chunk = MakeChunk(data.subspan(at, n), at);
    if (!emit(chunk)) return false;
    at += n;
  }
  return true;
}

void ChunkReceiver::Reserve(uint64_t total_bytes) {
  data_.reserve(std::min(total_bytes, kMaxReserveBytes));
}

absl::Status ChunkReceiver::Add(const v1::Chunk& chunk) {
  if (chunk.offset() != next_offset_) {
    return absl::DataLossError(absl::StrCat("chunk at offset ", chunk.offset(),
                                            " does not continue the stream at ", next_offset_));
  }
  if (chunk.data().empty() || chunk.data().size() > kMaxChunkData) {
    return absl::DataLossError(absl::StrCat("chunk at offset ", chunk.offset(), " holds ",
                                            chunk.data().size(), " bytes (1..", kMaxChunkData,
                                            " allowed)"));
  }
  const uint32_t crc = Crc32c(AsBytes(chunk.data()));
  if (crc != chunk.crc32c()) {
    return absl::DataLossError(absl::StrCat("chunk at offset ", chunk.offset(),
                                            ": CRC32C mismatch (sent ", chunk.crc32c(),
                                            ", received data has ", crc, ")"));
  }
  data_ += chunk.data();
  next_offset_ += chunk.data().size();
  return absl::OkStatus();
}

}  // namespace glvq::rpc
