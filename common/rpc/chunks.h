// Bulk data on the wire: byte streams cut into Chunk messages
// (proto/glvq/v1/services.proto) of at most kMaxChunkData bytes, each with
// the CRC32C of its data, so that a corrupted chunk is caught where it
// arrives and the stream can be resumed at a byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "glvq/v1/services.pb.h"

namespace glvq::rpc {

// 4 MiB - 4 KiB: a message with one full chunk stays within gRPC's default
// 4 MiB message limit, so clients without glvq's own limit
// (kMaxMessageBytes, grpc_util.h) can stream too.
inline constexpr size_t kMaxChunkData = 4'190'208;
// What ChunkReceiver::Reserve trusts a declared size for.
inline constexpr uint64_t kMaxReserveBytes = uint64_t{1} << 30;

v1::Chunk MakeChunk(std::span<const std::byte> piece, uint64_t offset);

// Cuts data[start, end) into chunks of at most `max_bytes` and passes each
// to `emit` in order; stops early (returning false) when `emit` does.
// `emit` may take the chunk's contents (Swap it into the message it sends:
// a chunk is megabytes, and every copy shows in the streaming rate).
bool ForEachChunk(std::span<const std::byte> data, uint64_t start,
                  const std::function<bool(v1::Chunk&)>& emit,
                  size_t max_bytes = kMaxChunkData);

// Collects the chunks of one stream, checking each as it comes: it must
// start where the previous one ended, hold 1..kMaxChunkData bytes, and
// match its CRC32C. DATA_LOSS naming the offset otherwise.
class ChunkReceiver {
 public:
  explicit ChunkReceiver(uint64_t start = 0) : next_offset_(start) {}
  // Makes room for a stream of `total_bytes` (as its sender declares it;
  // at most kMaxReserveBytes are reserved up front), so that the data is
  // not copied again as it grows.
  void Reserve(uint64_t total_bytes);
  absl::Status Add(const v1::Chunk& chunk);
  const std::string& data() const { return data_; }
  std::string Release() { return std::move(data_); }

 private:
  uint64_t next_offset_;
  std::string data_;
};

std::span<const std::byte> AsBytes(std::string_view s);

}  // namespace glvq::rpc
