#include "common/rpc/security.h"

#include <cstdlib>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"
#include "common/base/status_macros.h"
#include "common/base/string_view.h"
#include "common/rpc/grpc_util.h"
#include "grpcpp/support/client_interceptor.h"

namespace glvq::rpc {
namespace {

constexpr uint64_t kMaxSecretFileBytes = 1 << 20;

// A secret file's content; the message names the file and the flag, never
// the content.
absl::StatusOr<std::string> ReadSecret(const std::string& path, const char* flag) {
  auto text = ReadFileToString(path, kMaxSecretFileBytes);
  if (!text.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, " ", path, ": cannot read: ", std::string(text.status().message())));
  }
  return text;
}

absl::StatusOr<std::vector<std::string>> ReadTokens(const std::string& path, const char* flag) {
  ASSIGN_OR_RETURN(std::string text, ReadSecret(path, flag));
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(flag, " ", path, ": holds no token"));
  }
  return tokens;
}

bool AnyEquals(const std::vector<std::string>& tokens, std::string_view token) {
  bool found = false;
  for (const std::string& t : tokens) found |= ConstantTimeEquals(t, token);  // no early exit
  return found;
}

// Adds "authorization: Bearer <token>" to the initial metadata of every call.
class TokenInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(std::shared_ptr<const std::string> header)
      : header_(std::move(header)) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({kAuthorizationKey, *header_});
    }
    methods->Proceed();
  }

 private:
  std::shared_ptr<const std::string> header_;
};

class TokenInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::shared_ptr<const std::string> header)
      : header_(std::move(header)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(header_);
  }

 private:
  std::shared_ptr<const std::string> header_;
};

std::string EnvOr(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

}  // namespace

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Every byte of the longer string is visited, so the time depends on the
  // lengths only (a token's length is not a secret worth hiding).
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

void AddServerSecurityOptions(CLI::App* app, ServerSecurity* s) {
  app->add_option("--tls-cert", s->tls_cert_file, "PEM certificate chain: serve TLS")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-key", s->tls_key_file, "PEM private key of --tls-cert")
      ->check(CLI::ExistingFile);
  app->add_option("--tls-client-ca", s->tls_client_ca_file,
                  "PEM roots: require and verify client certificates (mTLS)")
      ->check(CLI::ExistingFile);
  app->add_option("--client-token-file", s->client_token_file,
                  "bearer tokens of the client role (JobService), one per line")
      ->check(CLI::ExistingFile);
  app->add_option("--worker-token-file", s->worker_token_file,
                  "bearer tokens of the worker role (WorkerService), one per line")
      ->check(CLI::ExistingFile);
  app->add_flag("--insecure", s->insecure,
                "allow plaintext and token-less service on a non-loopback address");
}

void AddClientSecurityOptions(CLI::App* app, ClientSecurity* s) {
  s->tls_ca_file = EnvOr("GLVQ_TLS_CA");
  s->tls_cert_file = EnvOr("GLVQ_TLS_CERT");
  s->tls_key_file = EnvOr("GLVQ_TLS_KEY");
  s->token_file = EnvOr("GLVQ_TOKEN_FILE");
  app->add_option("--tls-ca", s->tls_ca_file, "PEM roots to verify the coordinator: use TLS "
                  "[$GLVQ_TLS_CA]");
  app->add_option("--tls-cert", s->tls_cert_file, "PEM client certificate for mTLS "
                  "[$GLVQ_TLS_CERT]");
  app->add_option("--tls-key", s->tls_key_file, "PEM private key of --tls-cert [$GLVQ_TLS_KEY]");
  app->add_option("--token-file", s->token_file, "file holding the bearer token "
                  "[$GLVQ_TOKEN_FILE]");
  app->add_flag("--insecure", s->insecure, "allow plaintext to a non-loopback coordinator");
}

bool IsLoopbackAddress(std::string_view address) {
  if (absl::StartsWith(Sv(address), "unix:")) return true;
  for (const char* host : {"127.0.0.1:", "localhost:", "[::1]:", "ipv4:127.0.0.1:"}) {
    if (absl::StartsWith(Sv(address), host)) return true;
  }
  return false;
}

absl::StatusOr<Authenticator> Authenticator::Load(const ServerSecurity& security) {
  Authenticator auth;
  if (security.client_token_file.empty() && security.worker_token_file.empty()) return auth;
  if (security.client_token_file.empty() || security.worker_token_file.empty()) {
    return absl::FailedPreconditionError(
        "token authentication needs both --client-token-file and --worker-token-file");
  }
  auth.enabled_ = true;
  ASSIGN_OR_RETURN(auth.client_tokens_,
                   ReadTokens(security.client_token_file, "--client-token-file"));
  ASSIGN_OR_RETURN(auth.worker_tokens_,
                   ReadTokens(security.worker_token_file, "--worker-token-file"));
  for (const std::string& t : auth.client_tokens_) {
    if (AnyEquals(auth.worker_tokens_, t)) {
      return absl::InvalidArgumentError(
          "a token is listed for both the client and the worker role");
    }
  }
  return auth;
}

grpc::Status Authenticator::Check(const grpc::ServerContext& context, Role role) const {
  if (!enabled_) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kAuthorizationKey);
  if (it == metadata.end()) {
    return {grpc::StatusCode::UNAUTHENTICATED, "missing bearer token (--token-file)"};
  }
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (!value.starts_with(kBearer)) {
    return {grpc::StatusCode::UNAUTHENTICATED, "authorization is not a bearer token"};
  }
  value.remove_prefix(kBearer.size());
  const bool is_client = AnyEquals(client_tokens_, value);
  const bool is_worker = AnyEquals(worker_tokens_, value);
  if (!is_client && !is_worker) {
    return {grpc::StatusCode::UNAUTHENTICATED, "unknown bearer token"};
  }
  if ((role == Role::kClient) != is_client) {
    return {grpc::StatusCode::PERMISSION_DENIED,
            role == Role::kClient ? "a worker token cannot call the job service"
                                  : "a client token cannot call the worker service"};
  }
  return grpc::Status::OK;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& listen) {
  const bool off_loopback = !IsLoopbackAddress(listen) && !security.insecure;
  if (off_loopback && security.client_token_file.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "serving on ", listen, " (not loopback) needs --client-token-file and "
        "--worker-token-file, or --insecure"));
  }
  if (security.tls_cert_file.empty() != security.tls_key_file.empty()) {
    return absl::FailedPreconditionError("--tls-cert and --tls-key go together");
  }
  if (security.tls_cert_file.empty()) {
    if (!security.tls_client_ca_file.empty()) {
      return absl::FailedPreconditionError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    if (off_loopback) {
      return absl::FailedPreconditionError(absl::StrCat(
          "serving plaintext on ", listen, " (not loopback) needs --insecure; "
          "give --tls-cert and --tls-key for TLS"));
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadSecret(security.tls_key_file, "--tls-key"));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadSecret(security.tls_cert_file, "--tls-cert"));
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!security.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(options.pem_root_certs,
                     ReadSecret(security.tls_client_ca_file, "--tls-client-ca"));
    options.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(
    const std::string& address, const ClientSecurity& security) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (security.tls_cert_file.empty() != security.tls_key_file.empty()) {
    return absl::FailedPreconditionError("--tls-cert and --tls-key go together");
  }
  if (security.tls_ca_file.empty()) {
    if (!security.tls_cert_file.empty()) {
      return absl::FailedPreconditionError("--tls-cert needs --tls-ca");
    }
    if (!IsLoopbackAddress(address) && !security.insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "plaintext to ", address, " (not loopback) needs --insecure; give --tls-ca for TLS"));
    }
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions options;
    ASSIGN_OR_RETURN(options.pem_root_certs, ReadSecret(security.tls_ca_file, "--tls-ca"));
    if (!security.tls_cert_file.empty()) {
      ASSIGN_OR_RETURN(options.pem_private_key, ReadSecret(security.tls_key_file, "--tls-key"));
      ASSIGN_OR_RETURN(options.pem_cert_chain, ReadSecret(security.tls_cert_file, "--tls-cert"));
    }
    credentials = grpc::SslCredentials(options);
  }
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> creators;
  if (!security.token_file.empty()) {
    ASSIGN_OR_RETURN(std::vector<std::string> tokens,
                     ReadTokens(security.token_file, "--token-file"));
    creators.push_back(std::make_unique<TokenInterceptorFactory>(
        std::make_shared<const std::string>(absl::StrCat("Bearer ", tokens.front()))));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, credentials, ChannelArgs(), std::move(creators));
}

}  // namespace glvq::rpc
