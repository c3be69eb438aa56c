#include "coordinator/job_entry.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/jobspec/yaml_proto.h"
#include "common/rpc/grpc_util.h"
#include "common/tensor/dtype.h"

namespace glvq::coordinator {

std::string StateLabel(v1::JobState state) {
  return jobspec::YamlEnumName(v1::JobState_descriptor()->FindValueByNumber(state));
}

bool IsTerminal(v1::JobState state) {
  return state == v1::JOB_STATE_SUCCEEDED || state == v1::JOB_STATE_FAILED ||
         state == v1::JOB_STATE_CANCELLED;
}

absl::Status UnknownJobError(const std::string& job_id) {
  return absl::NotFoundError(absl::StrCat("unknown job '", job_id, "'"));
}

v1::Progress JobEntry::ProgressNow(absl::Time now) const {
  if (final_progress) return *final_progress;
  v1::Progress p;
  p.set_tasks_total(static_cast<uint32_t>(tasks.size()));
  p.set_tasks_done(tasks_done);
  p.set_tasks_running(tasks_running);
  p.set_task_retries(retries);
  p.set_weights_total(job.status().plan().weights());
  p.set_weights_done(weights_done);
  p.set_bytes_read(bytes_read);
  p.set_bytes_written(bytes_written);
  const absl::Time start = rpc::FromProto(job.status().started_at());
  const absl::Time end =
      IsTerminal(state()) ? rpc::FromProto(job.status().finished_at()) : now;
  *p.mutable_elapsed() = rpc::ToProto(std::max(absl::ZeroDuration(), end - start));
  const double run_seconds = absl::ToDoubleSeconds(now - run_started);
  if (run_seconds > 0 && weights_done > weights_at_run_start) {
    p.set_weights_per_second(static_cast<double>(weights_done - weights_at_run_start) /
                             run_seconds);
  }
  std::set<std::string> workers;
  for (const TaskSlot& s : tasks) {
    if (s.phase == TaskSlot::Phase::kLeased) workers.insert(s.worker_id);
  }
  p.set_workers_active(static_cast<uint32_t>(workers.size()));
  *p.mutable_quality() = final_quality ? *final_quality : quality.Summary(tensors_done);
  return p;
}

v1::Job JobEntry::Snapshot(absl::Time now) const {
  v1::Job out = job;
  *out.mutable_status()->mutable_progress() = ProgressNow(now);
  return out;
}

v1::JobEvent& JobEntry::AddEvent(absl::Time now) {
  v1::JobEvent& e = events.emplace_back();
  e.set_job_id(id());
  e.set_sequence(++last_sequence);
  *e.mutable_time() = rpc::ToProto(now);
  e.set_state(state());
  *e.mutable_progress() = ProgressNow(now);
  if (events.size() > kMaxEvents) events.pop_front();
  return events.back();
}

void JobEntry::AddMessageEvent(absl::Time now, const std::string& message) {
  AddEvent(now).set_message(message);
}

v1::TaskEvent& JobEntry::AddTaskEvent(absl::Time now, v1::TaskEvent::Kind kind,
                                      const TaskSlot& slot, const std::string& message) {
  v1::TaskEvent* t = AddEvent(now).mutable_task();
  t->set_kind(kind);
  t->set_task_id(slot.task.id());
  t->set_tensor(slot.task.tensor());
  t->set_attempt(slot.task.attempt());
  t->set_worker_id(slot.worker_id);
  t->set_message(message);
  return *t;
}

void JobEntry::AddPlannedTask(v1::Task task) {
  task_index[task.id()] = tasks.size();
  ++ranges_left[task.tensor()];
  TaskSlot& slot = tasks.emplace_back();
  slot.task = std::move(task);
}

void JobEntry::Commit(TaskSlot& slot, const v1::TaskResultHeader& header) {
  slot.phase = TaskSlot::Phase::kCommitted;
  slot.payload_crc32c = header.payload_crc32c();
  slot.payload_bytes = header.payload_bytes();
  slot.payload_bits = header.payload_bits();
  const v1::TensorQuality& q = header.quality();
  slot.quality = {q.nmse(), q.sqnr_db(), q.proxy_loss(), q.top_error()};
  Count(slot);
}

void JobEntry::RecountCommitted() {
  tasks_done = 0;
  weights_done = 0;
  bytes_read = 0;
  bytes_written = 0;
  quality = QualityAccumulator();
  ranges_left.clear();
  tensors_done = 0;
  for (const TaskSlot& slot : tasks) ++ranges_left[slot.task.tensor()];
  for (const TaskSlot& slot : tasks) {
    if (slot.phase == TaskSlot::Phase::kCommitted) Count(slot);
  }
}

void JobEntry::Count(const TaskSlot& slot) {
  const v1::Task& t = slot.task;
  ++tasks_done;
  weights_done += t.weights();
  const std::optional<DType> dtype = ParseDType(t.source().dtype());
  bytes_read += t.weights() * (dtype ? DTypeSize(*dtype) : 0);
  bytes_written += slot.payload_bytes;
  BitsAccounting bits{t.weights(), slot.payload_bits, slot.payload_bytes * 8};
  quality.Add(t.weights(), slot.quality, bits);
  if (--ranges_left[t.tensor()] == 0) ++tensors_done;
}

}  // namespace glvq::coordinator
