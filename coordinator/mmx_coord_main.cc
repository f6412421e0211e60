// mmx-coord: the coordinator binary. Subcommands:
//   run    generate locally, in this process (coordinator/run_command.h)
//   serve  coordinate a cluster of workers and serve the API (coordinator/serve_command.h)
//   check  validate a shard config against its checkpoint
//   plan   capacity planning: shard config and predicted performance (coordinator/plan_command.h)
// Every failure prints one line, "mmx-coord: error: ...", and exits non-zero.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "coordinator/plan_command.h"
#include "coordinator/run_command.h"
#include "coordinator/serve_command.h"

int main(int argc, char** argv) {
  CLI::App app{"mmx-coord: the mmx coordinator (MiniMax-Text-01 serving)"};
  app.require_subcommand(1);
  mmx::coordinator::RunOptions run_options;
  CLI::App* run = mmx::coordinator::AddRunCommand(app, &run_options);
  mmx::coordinator::ServeOptions serve_options;
  CLI::App* serve = mmx::coordinator::AddServeCommand(app, &serve_options);
  mmx::coordinator::CheckOptions check_options;
  CLI::App* check = mmx::coordinator::AddCheckCommand(app, &check_options);
  mmx::coordinator::PlanOptions plan_options;
  CLI::App* plan = mmx::coordinator::AddPlanCommand(app, &plan_options);
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
  if (run->parsed()) status = mmx::coordinator::RunLocal(run_options);
  if (serve->parsed()) status = mmx::coordinator::Serve(serve_options);
  if (check->parsed()) status = mmx::coordinator::Check(check_options);
  if (plan->parsed()) status = mmx::coordinator::RunPlan(plan_options);
  if (!status.ok()) {
    std::fprintf(stderr, "mmx-coord: error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
