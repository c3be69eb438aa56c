#include "client/job_watch.h"

#include <unistd.h>

#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/service_client.h"
#include "common/rpc/grpc_util.h"

namespace glvq::cli {
namespace {

bool Terminal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
         s == v1::JOB_STATE_CANCELLED;
}

std::string Eta(const v1::Progress& p) {
  if (p.weights_per_second() <= 0 || p.weights_done() >= p.weights_total()) return "--:--";
  const auto s = static_cast<int64_t>(static_cast<double>(p.weights_total() - p.weights_done()) /
                                      p.weights_per_second());
  return s >= 3600 ? absl::StrFormat("%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                   : absl::StrFormat("%d:%02d", s / 60, s % 60);
}

// Renders one event; returns whether something was printed.
class Printer {
 public:
  explicit Printer(const WatchOptions& o) : o_(o) {}

  void Event(const v1::JobEvent& e) {
    std::ostream& out = *o_.out;
    switch (o_.style) {
      case WatchOptions::Style::kQuiet:
        return;
      case WatchOptions::Style::kJson:
        out << ProtoJson(e).dump() << std::endl;
        return;
      case WatchOptions::Style::kBar:
        out << "\r" << ProgressText(e.state(), e.progress(), true) << "\033[K" << std::flush;
        if (Terminal(e.state())) out << "\n";
        return;
      case WatchOptions::Style::kLines: {
        const absl::Time now = absl::Now();
        const bool changed = e.state() != last_state_;
        if (changed || Terminal(e.state()) || now - last_line_ >= o_.line_interval) {
          out << ProgressText(e.state(), e.progress(), false) << std::endl;
          last_line_ = now;
          last_state_ = e.state();
        }
        return;
      }
    }
  }

 private:
  const WatchOptions& o_;
  absl::Time last_line_ = absl::InfinitePast();
  v1::JobState last_state_ = v1::JOB_STATE_UNSPECIFIED;
};

}  // namespace

WatchOptions::Style DefaultStyle(int fd) {
  return ::isatty(fd) ? WatchOptions::Style::kBar : WatchOptions::Style::kLines;
}

std::string ProgressText(v1::JobState state, const v1::Progress& p, bool bar) {
  const double fraction =
      p.weights_total() > 0
          ? static_cast<double>(p.weights_done()) / static_cast<double>(p.weights_total())
          : 0.0;
  std::string text;
  if (bar) {
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(fraction * kWidth);
    text = "[" + std::string(static_cast<size_t>(filled), '#') +
           std::string(static_cast<size_t>(kWidth - filled), '-') + "] ";
  }
  const v1::QualitySummary& q = p.quality();
  text += absl::StrFormat("%3.0f%%  %d/%d tasks  %.2fM w/s  ETA %s", 100 * fraction, p.tasks_done(),
                          p.tasks_total(), p.weights_per_second() / 1e6, Eta(p));
  if (p.tasks_done() > 0) {
    text += absl::StrFormat("  NMSE %.4g  SQNR %.1f dB  %.3f b/w", q.mean_nmse(),
                            q.mean_sqnr_db(), q.total_bits_per_weight());
  }
  if (p.task_retries() > 0) text += absl::StrFormat("  %d retries", p.task_retries());
  return text + "  " + StateName(state);
}

absl::StatusOr<v1::Job> WatchJob(v1::JobService::StubInterface& stub, const std::string& job_id,
                                 const WatchOptions& options) {
  Printer printer(options);
  uint64_t after = 0;
  absl::Time unreachable_since = absl::InfiniteFuture();
  while (true) {
    grpc::ClientContext context;
    rpc::SetTimeout(&context, absl::Hours(24 * 7));  // a stream's deadline: a long job
    v1::WatchJobRequest request;
    request.set_job_id(job_id);
    request.set_after_sequence(after);
    auto reader = stub.WatchJob(&context, request);
    v1::JobEvent e;
    bool ended = false;
    while (reader->Read(&e)) {
      unreachable_since = absl::InfiniteFuture();
      after = std::max(after, e.sequence());
      printer.Event(e);
      ended = ended || Terminal(e.state());
    }
    const absl::Status status = rpc::FromGrpcStatus(reader->Finish());
    if (status.ok() && ended) break;
    if (!status.ok() && status.code() != absl::StatusCode::kUnavailable) return status;
    const absl::Time now = absl::Now();
    unreachable_since = std::min(unreachable_since, now);
    if (now - unreachable_since > options.reconnect_for) return status;
    absl::SleepFor(absl::Milliseconds(500));
  }
  grpc::ClientContext context;
  rpc::SetTimeout(&context, options.call_timeout);
  v1::GetJobRequest request;
  request.set_job_id(job_id);
  v1::Job job;
  const grpc::Status s = stub.GetJob(&context, request, &job);
  if (!s.ok()) return rpc::FromGrpcStatus(s);
  return job;
}

}  // namespace glvq::cli
