#include "model/tokenizer/byte_level.h"

#include <array>

#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

bool StandsForItself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_unicode;
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 0x100 + 68> to_byte;  // -1: not a stand-in
  Tables() {
    to_byte.fill(-1);
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      to_unicode[b] = StandsForItself(b) ? static_cast<char32_t>(b) : next++;
      AppendUtf8(to_unicode[b], &to_utf8[b]);
      to_byte[to_unicode[b]] = static_cast<int16_t>(b);
    }
  }
};

const Tables& GetTables() {
  static const Tables* tables = new Tables();
  return *tables;
}

}  // namespace

char32_t ByteToUnicode(uint8_t byte) { return GetTables().to_unicode[byte]; }

std::optional<uint8_t> UnicodeToByte(char32_t cp) {
  const Tables& tables = GetTables();
  if (cp >= tables.to_byte.size() || tables.to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(tables.to_byte[cp]);
}

std::string BytesToByteLevel(std::string_view bytes) {
  const Tables& tables = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += tables.to_utf8[static_cast<uint8_t>(c)];
  return out;
}

}  // namespace mmx::tokenizer
