// Following a job until it ends (`glvq watch`, `submit --wait`, embedded
// `quantize`): a progress bar with ETA and running quality on a terminal,
// plain periodic lines otherwise, JSON lines with --output json. The
// stream is resumed from the last event seen if the coordinator goes away
// for a while.
#pragma once

#include <iosfwd>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "glvq/v1/services.grpc.pb.h"

namespace glvq::cli {

struct WatchOptions {
  enum class Style { kBar, kLines, kJson, kQuiet };
  Style style = Style::kLines;
  std::ostream* out = nullptr;
  absl::Duration line_interval = absl::Seconds(2);  // kLines: at most one line per interval
  absl::Duration call_timeout = absl::Seconds(30);  // unary calls (GetJob)
  absl::Duration reconnect_for = absl::Seconds(60);  // give up after this long unreachable
  int columns = 80;  // kBar: the terminal's width; the line is fitted into it (FitProgressText)
};

// kBar if `fd` is a terminal, else kLines.
WatchOptions::Style DefaultStyle(int fd);
// The width of terminal `fd`; $COLUMNS, else 80, when it has none.
int TerminalColumns(int fd);

// Watches job `job_id` until it ends and returns the final Job. UNAVAILABLE
// if the coordinator stayed unreachable for options.reconnect_for.
absl::StatusOr<v1::Job> WatchJob(v1::JobService::StubInterface& stub, const std::string& job_id,
                                 const WatchOptions& options);

// "[#######-------]  50%  3/6 tasks  1.2M w/s  ETA 0:04  NMSE 0.0123  SQNR 19.1 dB  2.130 b/w
// running" (with `bar`), or the same without the bar.
std::string ProgressText(v1::JobState state, const v1::Progress& progress, bool bar);
// The most detailed progress line that fits `columns` - 1 characters: SQNR
// goes first, then the bar narrows, then NMSE, rate and bits, then the bar;
// the last resort is cut to fit. The bar style redraws one line in place,
// so a line wider than the terminal would leave a new row per update.
std::string FitProgressText(v1::JobState state, const v1::Progress& progress, int columns);

}  // namespace glvq::cli
