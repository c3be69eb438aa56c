#include "tests/support/metrics_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

#include "coordinator/server.h"
#include "gtest/gtest.h"
#include "worker/service/worker.h"

namespace glvq::testing {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Reads until EOF or the deadline; false on timeout or error.
bool ReadAll(int fd, std::chrono::steady_clock::time_point deadline, std::string* out) {
  char buffer[65536];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buffer, static_cast<size_t>(n));
  }
}

// A label set {a="x",b="y"} starting at text[*pos] == '{'; advances *pos.
bool ParseLabels(const std::string& text, size_t* pos, std::map<std::string, std::string>* out) {
  size_t i = *pos + 1;
  while (i < text.size() && text[i] != '}') {
    const size_t eq = text.find('=', i);
    if (eq == std::string::npos || eq + 1 >= text.size() || text[eq + 1] != '"') return false;
    const std::string name = text.substr(i, eq - i);
    std::string value;
    size_t j = eq + 2;
    for (; j < text.size() && text[j] != '"'; ++j) {
      if (text[j] == '\\' && j + 1 < text.size()) {
        ++j;
        value += text[j] == 'n' ? '\n' : text[j];
      } else {
        value += text[j];
      }
    }
    if (j >= text.size()) return false;
    (*out)[name] = value;
    i = j + 1;
    if (i < text.size() && text[i] == ',') ++i;
  }
  if (i >= text.size()) return false;
  *pos = i + 1;
  return true;
}

bool Matches(const MetricSample& s, const std::string& name,
             const std::map<std::string, std::string>& labels) {
  if (s.name != name) return false;
  for (const auto& [k, v] : labels) {
    const auto it = s.labels.find(k);
    if (it == s.labels.end() || it->second != v) return false;
  }
  return true;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}

}  // namespace

HttpResponse HttpGet(int port, const std::string& target, double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_seconds));
  HttpResponse response;
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return response;
  const sockaddr_in addr = Loopback(port);
  std::string reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1:" +
                                std::to_string(port) + "\r\nConnection: close\r\n\r\n";
    if (::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()) &&
        ReadAll(fd, deadline, &reply)) {
      const size_t body = reply.find("\r\n\r\n");
      int status = 0;
      if (body != std::string::npos && std::sscanf(reply.c_str(), "HTTP/%*s %d", &status) == 1) {
        response.status = status;
        response.body = reply.substr(body + 4);
      }
    }
  }
  ::close(fd);
  return response;
}

std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr = Loopback(0);
  socklen_t size = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

double Exposition::Sum(const std::string& name,
                       const std::map<std::string, std::string>& labels) const {
  double sum = 0;
  for (const MetricSample& s : samples) {
    if (Matches(s, name, labels)) sum += s.value;
  }
  return sum;
}

int Exposition::Count(const std::string& name,
                      const std::map<std::string, std::string>& labels) const {
  int n = 0;
  for (const MetricSample& s : samples) n += Matches(s, name, labels) ? 1 : 0;
  return n;
}

Exposition ParseExposition(const std::string& text) {
  Exposition out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
      const size_t space = line.find(' ', 7);
      const std::string name = line.substr(7, space - 7);
      const std::string rest = space == std::string::npos ? "" : line.substr(space + 1);
      (line[2] == 'H' ? out.help : out.types)[name] = rest;
      continue;
    }
    if (line[0] == '#') continue;
    MetricSample s;
    size_t pos = 0;
    while (pos < line.size() && IsNameChar(line[pos])) ++pos;
    s.name = line.substr(0, pos);
    if (pos < line.size() && line[pos] == '{' && !ParseLabels(line, &pos, &s.labels)) {
      ADD_FAILURE() << "bad labels: " << line;
      continue;
    }
    char* end = nullptr;
    const std::string value = line.substr(pos);
    s.value = std::strtod(value.c_str(), &end);
    if (s.name.empty() || end == value.c_str()) {
      ADD_FAILURE() << "bad sample: " << line;
      continue;
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

metrics::MetricsServer& SharedMetricsServer() {
  static metrics::MetricsServer* const server = [] {
    auto started = metrics::MetricsServer::Start("127.0.0.1:0", "test");
    if (!started.ok()) throw std::runtime_error(started.status().ToString());
    return started->release();
  }();
  return *server;
}

ServedMetrics::ServedMetrics(std::vector<std::shared_ptr<prometheus::Collectable>> collectables)
    : collectables_(std::move(collectables)) {
  for (const auto& c : collectables_) SharedMetricsServer().Register(c);
}

ServedMetrics::~ServedMetrics() {
  for (const auto& c : collectables_) SharedMetricsServer().Unregister(c);
}

Exposition ScrapeShared() {
  const HttpResponse r = HttpGet(SharedMetricsServer().port(), "/metrics");
  EXPECT_EQ(r.status, 200);
  return ParseExposition(r.body);
}

Exposition ScrapeIdleService(const std::filesystem::path& state_dir) {
  coordinator::SchedulerOptions options;
  options.state_dir = state_dir;
  auto server = coordinator::CoordinatorServer::Start("", options);
  if (!server.ok()) {
    ADD_FAILURE() << server.status();
    return {};
  }
  const worker::WorkerOptions worker_options;  // named: GCC 12 misreads `{}` here
  worker::Worker worker((*server)->InProcessChannel(), worker_options);
  std::vector<std::shared_ptr<prometheus::Collectable>> all =
      (*server)->scheduler().MetricsCollectables();
  for (auto& c : worker.MetricsCollectables()) all.push_back(std::move(c));
  const ServedMetrics served(std::move(all));
  return ScrapeShared();
}

std::set<std::string> GlvqMetricNames(const std::string& expression) {
  std::set<std::string> names;
  for (size_t i = 0; i < expression.size();) {
    const char c = expression[i];
    if (c == '"' || c == '\'' || c == '`') {  // a string literal (label value)
      const size_t end = expression.find(c, i + 1);
      i = end == std::string::npos ? expression.size() : end + 1;
    } else if (IsNameChar(c) || c == '$') {
      size_t j = i + 1;
      while (j < expression.size() && IsNameChar(expression[j])) ++j;
      const std::string word = expression.substr(i, j - i);
      if (word.starts_with("glvq_")) names.insert(word);
      i = j;
    } else {
      ++i;
    }
  }
  return names;
}

}  // namespace glvq::testing
