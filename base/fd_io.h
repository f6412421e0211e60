// Whole-buffer reads and writes on a file descriptor (pipes and socketpairs between a process
// and its forked children: tests and benches that swap addresses before UCX starts).
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace mmx {

// Writes all `size` bytes; false on an error or a closed peer.
inline bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Reads exactly `size` bytes; false on an error or end of file first.
inline bool ReadAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace mmx
