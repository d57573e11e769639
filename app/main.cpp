// The `mailroom` command: the transports built into this binary, and the
// command line (app/cli.cpp).

#include "app/cli.hpp"
#include "app/transport_registry.hpp"

int main(int argc, char** argv) {
  return mailroom::run_cli(argc, argv, mailroom::builtin_transports());
}
