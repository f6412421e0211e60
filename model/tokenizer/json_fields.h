// Reading tokenizer.json's components with errors that name the JSON path of the problem,
// e.g. `pre_tokenizer.pretokenizers[1]: unsupported type "Foo"`. Tokenizer::FromJson prefixes
// the file name once, so component parsers only ever deal in paths.
//
// Conventions (those of Hugging Face's serde models): a missing key and `null` both mean
// "use the default"; a present key of the wrong JSON type is an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace mmx::tokenizer {

using Json = nlohmann::json;

// "a.b" / "a[3]": the path of a member or element below `path` ("" is the document root).
std::string JsonChild(std::string_view path, std::string_view key);
std::string JsonIndex(std::string_view path, size_t index);

// InvalidArgument "path: message".
absl::Status JsonError(std::string_view path, std::string_view message);
// Unimplemented `path: unsupported type "Foo"`: well-formed, but a component we do not have.
absl::Status UnsupportedType(std::string_view path, std::string_view type);

// The object's "type" string (required).
absl::StatusOr<std::string> JsonType(const Json& object, std::string_view path);

// Required members.
absl::StatusOr<std::string> JsonString(const Json& object, std::string_view key,
                                       std::string_view path);
absl::StatusOr<const Json*> JsonArray(const Json& object, std::string_view key,
                                      std::string_view path);
absl::StatusOr<const Json*> JsonObject(const Json& object, std::string_view key,
                                       std::string_view path);
// A token id: an integer in [0, 2^31).
absl::StatusOr<int32_t> JsonId(const Json& value, std::string_view path);

// Optional members: missing or null gives the default (nullopt for strings).
absl::StatusOr<bool> JsonBool(const Json& object, std::string_view key, bool default_value,
                              std::string_view path);
absl::StatusOr<int64_t> JsonInt(const Json& object, std::string_view key, int64_t default_value,
                                std::string_view path);
absl::StatusOr<std::optional<std::string>> JsonOptionalString(const Json& object,
                                                              std::string_view key,
                                                              std::string_view path);

}  // namespace mmx::tokenizer
