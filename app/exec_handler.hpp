#pragma once

// The exec handler: one external command per message, payload on stdin,
// outcome from the exit status.

#include <cstddef>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/handler.hpp"

namespace mailroom {

/// Settings of the exec handler, one external command run per message.
struct exec_settings {
  /// Holds argv of the command; `command[0]` is looked up in PATH unless it
  /// contains a slash. Must not be empty.
  std::vector<std::string> command;
  /// Adds these variables to the child's environment, overriding the parent's
  /// and the MAILROOM_* ones.
  std::vector<std::pair<std::string, std::string>> env;
  /// Names of variables never passed on from the parent's environment: the
  /// ones holding secrets (the configuration's `password_env` and the like).
  std::vector<std::string> scrub_env;
  /// Starts the child from an empty environment instead of the parent's:
  /// it gets only the MAILROOM_* variables and `env` (set PATH there if the
  /// command needs one). Default false.
  bool env_clear = false;
  /// Caps how much of stdout, and of stderr, is kept (bytes); the rest is
  /// read and dropped so the child never blocks on a full pipe.
  std::size_t max_output_bytes = 65536;
};

/// Returns a handler that runs an external command for each message.
///
/// Per message the command is spawned (posix_spawnp) in a new process group
/// with:
///  - stdin: the payload, then end of file (a child that exits without
///    reading it is fine);
///  - stdout and stderr: captured, each bounded by `max_output_bytes`;
///    stdout is logged at debug level, the last KiB of stderr (whitespace
///    trimmed) goes into the reason of a failed outcome;
///  - environment: the parent's environment when this factory ran (none
///    with `env_clear`) without the variables named in `scrub_env`, then
///    MAILROOM_TOPIC, MAILROOM_KEY, MAILROOM_MESSAGE_ID and MAILROOM_ATTEMPT,
///    then `settings.env` (later entries win on a name clash);
///  - an empty signal mask and default dispositions for the common signals.
///
/// The outcome follows the exit status:
///  - exit 0 → ok;
///  - exit 75 (EX_TEMPFAIL) → retry("exec exited 75: <stderr tail>");
///  - any other exit → dead_letter("exec exited N: <stderr tail>");
///  - killed by a signal (an OOM kill) → retry("exec killed by signal N:
///    <stderr tail>");
///  - spawn failure → throws std::runtime_error("exec spawn of '<cmd>'
///    failed: <errno text>"), which the engine counts as a handler error and
///    retries: the command was checked at configuration time
///    (check_exec_command), so a failure now is the machine's, not the
///    message's;
///  - deadline reached or context cancelled → the whole process group gets
///    SIGKILL and is reaped, then retry("handler timeout after N ms"), N
///    counted from the start of the call (a call that starts past its
///    deadline spawns nothing).
///
/// The process must not ignore SIGCHLD: the kernel would then reap the
/// children itself and their exit status would be lost (such calls retry).
///
/// When the command exits, whatever it left running in its process group is
/// killed too, so no handler call outlives itself. Every descriptor is opened
/// close-on-exec and every child is reaped, on every path. A context whose
/// deadline is the clock's epoch (never set) has no deadline.
///
/// The returned handler may be called from many threads at once. Throws
/// std::invalid_argument when `settings.command` is empty.
handler_fn make_exec_handler(exec_settings settings);

/// Returns a batch handler that runs the command once per batch, as a
/// Lambda-style batch function runs unchanged:
///  - stdin: the batch as a JSON array of records, in delivery order:
///    `{"id", "key", "topic", "attempt", "headers": {name: value},
///    "payload"}` (`"payload_base64"` instead when the payload is not UTF-8);
///  - environment: as make_exec_handler's, with MAILROOM_TOPIC and
///    MAILROOM_BATCH_SIZE instead of the per-message variables;
///  - stdout: the AWS Lambda partial-batch response,
///    `{"batchItemFailures":[{"itemIdentifier":"<id>"}]}`: those items are
///    retried, every other one is acked (empty output, `{}` or an empty list:
///    all acked);
///  - exit status other than 0, a signal, or output that is not such a
///    response: every item is retried, the reason naming why;
///  - the deadline: the process group is killed and every item retried.
batch_handler_fn make_exec_batch_handler(exec_settings settings);

/// Returns an empty string when `program` names an executable regular file
/// (looked up in PATH unless it holds a slash, as posix_spawnp does), else
/// why not ("not found in PATH", "is a directory", "is not executable").
std::string check_exec_command(const std::string& program);

} // namespace mailroom
