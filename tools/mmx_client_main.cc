// mmx: command-line client of an mmx-coord server (coordinator/client_commands.h).
#include <cstdio>

#include "CLI/CLI.hpp"
#include "tools/client_commands.h"
#include "tools/job_commands.h"
#include "tools/tokenize_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"mmx: client of an mmx-coord server"};
  app.require_subcommand(1);
  mmx::tools::ClientOptions options;
  CLI::App* generate = mmx::tools::AddGenerateCommand(app, &options);
  CLI::App* status_cmd = mmx::tools::AddStatusCommand(app, &options);
  CLI::App* chat = mmx::tools::AddChatCommand(app, &options);
  mmx::tools::JobCommands job_commands(app);
  mmx::tools::TokenizeCommands tokenize_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mmx: error: %s (see mmx --help)\n", e.what());
    return 2;
  }
  absl::Status status;
  if (generate->parsed()) status = mmx::tools::RunGenerateClient(options);
  if (status_cmd->parsed()) status = mmx::tools::RunStatusClient(options);
  if (chat->parsed()) status = mmx::tools::RunChatClient(options);
  if (job_commands.parsed()) status = job_commands.Run();
  if (tokenize_commands.parsed()) status = tokenize_commands.Run();
  if (!status.ok()) {
    std::fprintf(stderr, "mmx: error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
