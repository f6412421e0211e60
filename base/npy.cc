#include "base/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace mmx {
namespace {
constexpr char kMagic[] = "\x93NUMPY";
}  // namespace

absl::Status WriteNpyF32(const std::string& path, const std::vector<int64_t>& shape,
                         const float* data) {
  std::string dims = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) dims += ",";
  std::string header =
      absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", dims, "), }");
  // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');

  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  out.write(kMagic, 6);
  const char version[2] = {1, 0};
  out.write(version, 2);
  const uint16_t len = static_cast<uint16_t>(header.size());
  const char len_le[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  out.write(len_le, 2);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(float)));
  if (!out) return absl::DataLossError(absl::StrCat("short write to ", path));
  return absl::OkStatus();
}

absl::StatusOr<NpyArray> ReadNpyF32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  char head[10];
  in.read(head, 10);
  if (!in || std::memcmp(head, kMagic, 6) != 0 || head[6] != 1) {
    return absl::DataLossError(absl::StrCat(path, ": not a version-1.0 .npy file"));
  }
  const size_t len = static_cast<uint8_t>(head[8]) | (static_cast<size_t>(static_cast<uint8_t>(head[9])) << 8);
  std::string header(len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(len));
  if (header.find("'<f4'") == std::string::npos ||
      header.find("'fortran_order': False") == std::string::npos) {
    return absl::DataLossError(absl::StrCat(path, ": expected little-endian float32, C order"));
  }
  const size_t open = header.find('('), close = header.find(')');
  if (open == std::string::npos || close == std::string::npos) {
    return absl::DataLossError(absl::StrCat(path, ": header has no shape"));
  }
  // What the file holds after the header bounds the shape, before anything is allocated: a
  // header may claim any size (found by fuzzing: a 1.7 GB allocation from a 100-byte file).
  const std::streamoff data_at = in.tellg();
  in.seekg(0, std::ios::end);
  const int64_t available = in && data_at >= 0 ? static_cast<int64_t>(in.tellg() - data_at) / 4 : -1;
  in.seekg(data_at);
  NpyArray array;
  int64_t count = 1;
  for (absl::string_view part : absl::StrSplit(header.substr(open + 1, close - open - 1), ',')) {
    std::string p(absl::StripAsciiWhitespace(part));
    if (p.empty()) continue;
    int64_t d;
    if (!absl::SimpleAtoi(p, &d) || d < 0) return absl::DataLossError(absl::StrCat(path, ": bad shape"));
    array.shape.push_back(d);
    if (__builtin_mul_overflow(count, d, &count)) return absl::DataLossError(absl::StrCat(path, ": bad shape"));
  }
  if (count > available) return absl::DataLossError(absl::StrCat(path, ": data shorter than its shape"));
  array.data.resize(count);
  in.read(reinterpret_cast<char*>(array.data.data()), static_cast<std::streamsize>(count * sizeof(float)));
  if (!in) return absl::DataLossError(absl::StrCat(path, ": data shorter than its shape"));
  return array;
}

}  // namespace mmx
