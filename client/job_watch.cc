#include "client/job_watch.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
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
        out << "\r" << FitProgressText(e.state(), e.progress(), o_.columns) << "\033[K"
            << std::flush;
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

namespace {

// What a progress line shows, from the most to the least detailed.
struct LineParts {
  int bar = 24;         // bar width in characters; 0: no bar
  bool sqnr = true;     // SQNR beside NMSE
  bool nmse = true;     // NMSE (and SQNR)
  bool rate = true;     // weights per second and bits per weight
};
constexpr LineParts kLineVariants[] = {
    {24, true, true, true}, {24, false, true, true}, {10, false, true, true},
    {10, false, false, true}, {0, false, false, true}, {0, false, false, false}};

std::string Line(v1::JobState state, const v1::Progress& p, const LineParts& parts) {
  const double fraction =
      p.weights_total() > 0
          ? static_cast<double>(p.weights_done()) / static_cast<double>(p.weights_total())
          : 0.0;
  std::string text;
  if (parts.bar > 0) {
    const int filled = static_cast<int>(fraction * parts.bar);
    text = "[" + std::string(static_cast<size_t>(filled), '#') +
           std::string(static_cast<size_t>(parts.bar - filled), '-') + "] ";
  }
  text += absl::StrFormat("%3.0f%%  %d/%d tasks", 100 * fraction, p.tasks_done(), p.tasks_total());
  if (parts.rate) text += absl::StrFormat("  %.2fM w/s", p.weights_per_second() / 1e6);
  text += "  ETA " + Eta(p);
  const v1::QualitySummary& q = p.quality();
  if (p.tasks_done() > 0) {
    if (parts.nmse) text += absl::StrFormat("  NMSE %.4g", q.mean_nmse());
    if (parts.nmse && parts.sqnr) text += absl::StrFormat("  SQNR %.1f dB", q.mean_sqnr_db());
    if (parts.rate) text += absl::StrFormat("  %.3f b/w", q.total_bits_per_weight());
  }
  if (p.task_retries() > 0) text += absl::StrFormat("  %d retries", p.task_retries());
  return text + "  " + StateName(state);
}

}  // namespace

int TerminalColumns(int fd) {
  winsize size{};
  if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  const char* env = std::getenv("COLUMNS");
  const int columns = env != nullptr ? std::atoi(env) : 0;
  return columns > 0 ? columns : 80;
}

std::string ProgressText(v1::JobState state, const v1::Progress& p, bool bar) {
  LineParts parts = kLineVariants[0];
  if (!bar) parts.bar = 0;
  return Line(state, p, parts);
}

std::string FitProgressText(v1::JobState state, const v1::Progress& p, int columns) {
  // The last column stays free: writing into it makes some terminals wrap.
  const size_t room = static_cast<size_t>(std::max(columns - 1, 1));
  std::string text;
  for (const LineParts& parts : kLineVariants) {
    text = Line(state, p, parts);
    if (text.size() <= room) return text;
  }
  return text.substr(0, room);
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
