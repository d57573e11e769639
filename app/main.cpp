// The `mailroom` command: the transports built into this binary, and the
// command line (app/cli.cpp).

#include <csignal>

#include "app/cli.hpp"
#include "app/transport_registry.hpp"

int main(int argc, char** argv) {
  // SIGINT and SIGTERM are blocked from the first instruction, so one that
  // arrives while the config loads or the transport connects stays pending
  // until run_app's signal thread takes it (a clean drain and exit 0)
  // instead of killing the process with nothing settled or reported.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  return mailroom::run_cli(argc, argv, mailroom::builtin_transports());
}
