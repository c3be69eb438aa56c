// The workers a coordinator knows: registration, liveness from heartbeats,
// and the figures ListWorkers reports. Not thread-safe: the scheduler
// guards it with its own lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "glvq/v1/worker.pb.h"

namespace glvq::coordinator {

struct WorkerEntry {
  v1::WorkerInfo info;
  absl::Time last_heartbeat;
};

class WorkerRegistry {
 public:
  // Registers a worker and returns its id: `previous_id` if given and not in
  // use by a live worker (a worker re-registering after a coordinator
  // restart keeps its id), else a fresh "w-<n>".
  std::string Register(const std::string& hostname, const v1::Capabilities& capabilities,
                       const std::string& previous_id, absl::Time now);
  WorkerEntry* Find(const std::string& id);
  void Remove(const std::string& id) { workers_.erase(id); }
  // Marks workers silent for longer than `timeout` as LOST; returns their ids.
  std::vector<std::string> MarkLost(absl::Time now, absl::Duration timeout);
  std::vector<v1::WorkerInfo> List() const;

  void AddTask(const std::string& worker_id, const std::string& task_id);
  void RemoveTask(const std::string& worker_id, const std::string& task_id);

 private:
  std::map<std::string, WorkerEntry> workers_;
  uint64_t next_number_ = 1;
};

}  // namespace glvq::coordinator
