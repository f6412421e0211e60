// LogSink: where a component writes its log lines (one line each, without the newline). The
// coordinator's cluster and the worker runtime take one, so that a program embedding them
// (`mmx-coord run`: a whole cluster in one process) can keep them quiet.
#pragma once

#include <cstdio>
#include <functional>
#include <string>

namespace mmx {

using LogSink = std::function<void(const std::string& line)>;

// Each line to stderr, as written.
inline LogSink StderrLog() {
  return [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

// Drops every line.
inline LogSink NullLog() {
  return [](const std::string&) {};
}

}  // namespace mmx
