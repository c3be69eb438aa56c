#include "coordinator/worker_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/base/random_token.h"
#include "common/rpc/grpc_util.h"

namespace glvq::coordinator {

std::string WorkerRegistry::Register(const std::string& hostname,
                                     const v1::Capabilities& capabilities,
                                     const std::string& previous_id, absl::Time now) {
  std::string id = previous_id;
  const auto it = workers_.find(id);
  if (id.empty() || (it != workers_.end() && it->second.info.state() != v1::WORKER_STATE_LOST)) {
    do {
      // Numbered for people, with a random tail so that no worker can
      // guess another's id (ids are what leases are checked against).
      id = absl::StrCat("w-", next_number_++, "-", RandomToken().substr(0, 8));
    } while (workers_.contains(id));
  }
  WorkerEntry& w = workers_[id];
  w.info = v1::WorkerInfo();
  w.info.set_worker_id(id);
  w.info.set_hostname(hostname);
  *w.info.mutable_capabilities() = capabilities;
  w.info.set_state(v1::WORKER_STATE_IDLE);
  *w.info.mutable_registered_at() = rpc::ToProto(now);
  *w.info.mutable_last_heartbeat() = rpc::ToProto(now);
  w.last_heartbeat = now;
  return id;
}

WorkerEntry* WorkerRegistry::Find(const std::string& id) {
  const auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkerRegistry::MarkLost(absl::Time now, absl::Duration timeout) {
  std::vector<std::string> lost;
  for (auto& [id, w] : workers_) {
    if (w.info.state() != v1::WORKER_STATE_LOST && now - w.last_heartbeat > timeout) {
      w.info.set_state(v1::WORKER_STATE_LOST);
      lost.push_back(id);
    }
  }
  return lost;
}

std::vector<v1::WorkerInfo> WorkerRegistry::List() const {
  std::vector<v1::WorkerInfo> out;
  for (const auto& [id, w] : workers_) out.push_back(w.info);
  return out;
}

void WorkerRegistry::AddTask(const std::string& worker_id, const std::string& task_id) {
  if (WorkerEntry* w = Find(worker_id)) {
    w->info.add_task_ids(task_id);
    w->info.set_state(v1::WORKER_STATE_BUSY);
  }
}

void WorkerRegistry::Heartbeat(WorkerEntry* w, v1::WorkerState reported, absl::Time now) {
  w->last_heartbeat = now;
  *w->info.mutable_last_heartbeat() = rpc::ToProto(now);
  if (reported == v1::WORKER_STATE_DRAINING) {
    w->info.set_state(reported);
  } else if (w->info.state() == v1::WORKER_STATE_LOST) {
    w->info.set_state(now < w->set_aside_until           ? v1::WORKER_STATE_SET_ASIDE
                      : reported == v1::WORKER_STATE_UNSPECIFIED ? v1::WORKER_STATE_IDLE
                                                                  : reported);
  }
}

bool WorkerRegistry::CanLease(WorkerEntry* w, absl::Time now) {
  const v1::WorkerState state = w->info.state();
  if (state == v1::WORKER_STATE_DRAINING || state == v1::WORKER_STATE_LOST) return false;
  if (now < w->set_aside_until) return false;
  if (state == v1::WORKER_STATE_SET_ASIDE) {
    w->info.set_state(w->info.task_ids().empty() ? v1::WORKER_STATE_IDLE
                                                 : v1::WORKER_STATE_BUSY);
    w->info.clear_set_aside_until();
  }
  return true;
}

bool WorkerRegistry::RecordFailure(const std::string& worker_id, absl::Time now,
                                   const SetAsidePolicy& policy) {
  WorkerEntry* w = Find(worker_id);
  if (w == nullptr) return false;
  const uint32_t failures = w->info.consecutive_failures() + 1;
  w->info.set_consecutive_failures(failures);
  if (policy.after_failures == 0 || failures < policy.after_failures) return false;
  w->set_aside_until = now + policy.duration;
  *w->info.mutable_set_aside_until() = rpc::ToProto(w->set_aside_until);
  if (w->info.state() == v1::WORKER_STATE_IDLE || w->info.state() == v1::WORKER_STATE_BUSY) {
    w->info.set_state(v1::WORKER_STATE_SET_ASIDE);
  }
  return true;
}

void WorkerRegistry::RecordSuccess(const std::string& worker_id) {
  if (WorkerEntry* w = Find(worker_id)) w->info.set_consecutive_failures(0);
}

void WorkerRegistry::RemoveTask(const std::string& worker_id, const std::string& task_id) {
  WorkerEntry* w = Find(worker_id);
  if (w == nullptr) return;
  auto* ids = w->info.mutable_task_ids();
  ids->erase(std::remove(ids->begin(), ids->end(), task_id), ids->end());
  if (ids->empty() && w->info.state() == v1::WORKER_STATE_BUSY) {
    w->info.set_state(v1::WORKER_STATE_IDLE);
  }
}

}  // namespace glvq::coordinator
