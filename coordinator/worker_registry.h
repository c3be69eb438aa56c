// The workers a coordinator knows: registration, liveness from heartbeats,
// workers set aside because their tasks keep failing, and the figures
// ListWorkers reports. Not thread-safe: the scheduler
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
  absl::Time set_aside_until = absl::InfinitePast();
};

// When a worker whose tasks keep failing is set aside.
struct SetAsidePolicy {
  uint32_t after_failures = 3;  // in a row; 0: never
  absl::Duration duration = absl::Minutes(2);
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

  // A heartbeat from `w` reporting `reported`: DRAINING sticks, a LOST
  // worker comes back (SET_ASIDE again if its time aside has not ended).
  void Heartbeat(WorkerEntry* w, v1::WorkerState reported, absl::Time now);
  // Whether `w` may take a new lease now: not draining or lost, and not set
  // aside. Ends a set-aside whose time is over (the worker's count stays,
  // so its next failure sets it aside again; a success clears it).
  bool CanLease(WorkerEntry* w, absl::Time now);
  // A task of the worker failed; true if that set it aside (`policy`).
  bool RecordFailure(const std::string& worker_id, absl::Time now, const SetAsidePolicy& policy);
  // A result of the worker was committed: its failure count restarts.
  void RecordSuccess(const std::string& worker_id);

 private:
  std::map<std::string, WorkerEntry> workers_;
  uint64_t next_number_ = 1;
};

}  // namespace glvq::coordinator
