// mmx-coord: the coordinator binary. Subcommands:
//   run    generate locally, in this process (coordinator/run_command.h)
//   serve  coordinate a cluster of workers and serve the API (coordinator/serve_command.h)
//   check  validate a shard config against its checkpoint
//   plan   capacity planning: shard config and predicted performance (coordinator/plan_command.h)
// Every failure prints one line, "mmx-coord: error: ...", and exits non-zero.
#include <csignal>
#include <cstdio>

#include "CLI/CLI.hpp"
#include "tools/plan_command.h"
#include "tools/run_command.h"
#include "tools/serve_command.h"

int main(int argc, char** argv) {
  // A peer that hangs up while we write (an HTTPS client: OpenSSL writes with write(2), without
  // send's MSG_NOSIGNAL) must fail that one connection with EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{"mmx-coord: the mmx coordinator (MiniMax-Text-01 serving)"};
  app.require_subcommand(1);
  mmx::tools::RunOptions run_options;
  CLI::App* run = mmx::tools::AddRunCommand(app, &run_options);
  mmx::tools::ServeOptions serve_options;
  CLI::App* serve = mmx::tools::AddServeCommand(app, &serve_options);
  mmx::tools::CheckOptions check_options;
  CLI::App* check = mmx::tools::AddCheckCommand(app, &check_options);
  mmx::tools::PlanOptions plan_options;
  CLI::App* plan = mmx::tools::AddPlanCommand(app, &plan_options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mmx-coord: error: %s (see mmx-coord --help)\n", e.what());
    return 2;
  }
  absl::Status status;
  if (run->parsed()) status = mmx::tools::RunLocal(run_options);
  if (serve->parsed()) status = mmx::tools::Serve(serve_options);
  if (check->parsed()) status = mmx::tools::Check(check_options);
  if (plan->parsed()) status = mmx::tools::RunPlan(plan_options);
  if (!status.ok()) {
    std::fprintf(stderr, "mmx-coord: error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
