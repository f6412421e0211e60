// GPT-2's byte-level alphabet: every byte 0..255 has a printable Unicode stand-in, so that a
// BPE vocabulary of strings can cover arbitrary bytes. Printable Latin-1 bytes ('!'..'~',
// '¡'..'¬', '®'..'ÿ') stand for themselves; the other 68 bytes, in increasing order, take
// U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace mmx::tokenizer {

// The stand-in of `byte`, as a code point.
char32_t ByteToUnicode(uint8_t byte);
// The byte a stand-in represents; nullopt for any other code point.
std::optional<uint8_t> UnicodeToByte(char32_t cp);

// Every byte of `bytes` replaced by the UTF-8 of its stand-in.
std::string BytesToByteLevel(std::string_view bytes);

}  // namespace mmx::tokenizer
