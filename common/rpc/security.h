// Transport security and authentication of glvq's gRPC servers and clients
// (docs/security.md): TLS (optionally mutual), bearer tokens with two roles,
// and the rule that plaintext is accepted by default only on loopback.
//
// Roles: a *client* token may call JobService (submit, watch, cancel, ...);
// a *worker* token may call WorkerService (register, pull, upload, ...).
// Neither can do the other's work. Health and reflection need no token.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace CLI {
class App;
}

namespace glvq::rpc {

enum class Role { kClient, kWorker };

// The metadata key carrying "Bearer <token>".
inline constexpr char kAuthorizationKey[] = "authorization";

// What a server is configured with (flags of glvq-coordinator).
struct ServerSecurity {
  std::string tls_cert_file;       // PEM certificate chain; with key: TLS
  std::string tls_key_file;        // PEM private key
  std::string tls_client_ca_file;  // PEM roots; set: clients must present a cert (mTLS)
  std::string client_token_file;   // tokens of the client role, one per line
  std::string worker_token_file;   // tokens of the worker role, one per line
  bool insecure = false;           // allow plaintext / no tokens off loopback
};

// What a client is configured with (flags of glvq and glvq-worker).
struct ClientSecurity {
  std::string tls_ca_file;    // PEM roots to verify the server; set: TLS
  std::string tls_cert_file;  // PEM client certificate (mTLS), with key
  std::string tls_key_file;
  std::string token_file;     // the bearer token (first non-empty line)
  bool insecure = false;      // allow plaintext to a non-loopback address
};

// Adds --tls-cert, --tls-key, --tls-client-ca, --client-token-file,
// --worker-token-file and --insecure to a server's command line.
void AddServerSecurityOptions(CLI::App* app, ServerSecurity* security);
// Adds --tls-ca, --tls-cert, --tls-key, --token-file and --insecure to a
// client's command line; the environment variables GLVQ_TLS_CA,
// GLVQ_TLS_CERT, GLVQ_TLS_KEY and GLVQ_TOKEN_FILE are the defaults.
void AddClientSecurityOptions(CLI::App* app, ClientSecurity* security);

// True for "127.0.0.1:P", "localhost:P", "[::1]:P" and unix sockets.
bool IsLoopbackAddress(std::string_view address);

// Checks the bearer token of each call against the server's token files.
// Comparisons take the same time whatever the token; tokens are never
// logged or put into messages.
class Authenticator {
 public:
  // An authenticator that accepts every call (no token files).
  Authenticator() = default;
  // Reads the token files (at most 1 MiB each; blank lines and lines
  // starting with '#' ignored). FAILED_PRECONDITION if a file cannot be
  // read or holds no token, INVALID_ARGUMENT if both roles share a token.
  static absl::StatusOr<Authenticator> Load(const ServerSecurity& security);

  bool enabled() const { return enabled_; }
  // OK when auth is off or the call carries a token of `role`;
  // UNAUTHENTICATED when it carries no token or an unknown one;
  // PERMISSION_DENIED when the token belongs to the other role.
  grpc::Status Check(const grpc::ServerContext& context, Role role) const;

 private:
  bool enabled_ = false;
  std::vector<std::string> client_tokens_;
  std::vector<std::string> worker_tokens_;
};

// Server credentials for listening on `listen`: TLS when a certificate is
// configured; plaintext only on a loopback address or with `insecure`.
// Also refuses token-less servers off loopback without `insecure`.
// FAILED_PRECONDITION naming the missing flag or unreadable file.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerSecurity& security, const std::string& listen);

// A channel to `address` with ChannelArgs(): TLS when a CA is configured,
// plaintext only to a loopback address or with `insecure`; every call
// carries the token, if any. FAILED_PRECONDITION naming the missing flag or
// unreadable file.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeClientChannel(
    const std::string& address, const ClientSecurity& security);

// True when `a` and `b` are equal, in time that depends only on their
// lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace glvq::rpc
