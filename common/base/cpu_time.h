// CPU time, for profiles (glvq-bench pipeline). Never used to decide
// anything a result depends on.
#pragma once

namespace glvq {

// CPU seconds the calling thread has used so far (CLOCK_THREAD_CPUTIME_ID).
double ThreadCpuSeconds();

}  // namespace glvq
