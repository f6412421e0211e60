#include "model/tokenizer/json_fields.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "model/tokenizer/absl_compat.h"

namespace mmx::tokenizer {
namespace {

const Json* Member(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status NotAnObject(std::string_view path) { return JsonError(path, "expected an object"); }

}  // namespace

std::string JsonChild(std::string_view path, std::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(AsAbsl(path), ".", AsAbsl(key));
}

std::string JsonIndex(std::string_view path, size_t index) {
  return absl::StrCat(AsAbsl(path), "[", index, "]");
}

absl::Status JsonError(std::string_view path, std::string_view message) {
  return absl::InvalidArgumentError(
      path.empty() ? std::string(message) : absl::StrCat(AsAbsl(path), ": ", AsAbsl(message)));
}

absl::Status UnsupportedType(std::string_view path, std::string_view type) {
  return absl::UnimplementedError(
      absl::StrCat(AsAbsl(path), ": unsupported type \"", AsAbsl(type), "\""));
}

absl::StatusOr<std::string> JsonType(const Json& object, std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* type = Member(object, "type");
  if (type == nullptr) return JsonError(path, "missing \"type\"");
  if (!type->is_string()) return JsonError(JsonChild(path, "type"), "expected a string");
  return type->get<std::string>();
}

absl::StatusOr<std::string> JsonString(const Json& object, std::string_view key,
                                       std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return JsonError(path, absl::StrCat("missing \"", AsAbsl(key), "\""));
  if (!value->is_string()) return JsonError(JsonChild(path, key), "expected a string");
  return value->get<std::string>();
}

absl::StatusOr<const Json*> JsonArray(const Json& object, std::string_view key,
                                      std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return JsonError(path, absl::StrCat("missing \"", AsAbsl(key), "\""));
  if (!value->is_array()) return JsonError(JsonChild(path, key), "expected an array");
  return value;
}

absl::StatusOr<const Json*> JsonObject(const Json& object, std::string_view key,
                                       std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return JsonError(path, absl::StrCat("missing \"", AsAbsl(key), "\""));
  if (!value->is_object()) return JsonError(JsonChild(path, key), "expected an object");
  return value;
}

absl::StatusOr<int32_t> JsonId(const Json& value, std::string_view path) {
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0)) {
    const uint64_t id = value.get<uint64_t>();
    if (id <= static_cast<uint64_t>(std::numeric_limits<int32_t>::max())) {
      return static_cast<int32_t>(id);
    }
  }
  return JsonError(
      path, absl::StrCat("expected a token id (an integer in [0, 2^31)), got ", value.dump()));
}

absl::StatusOr<bool> JsonBool(const Json& object, std::string_view key, bool default_value,
                              std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return default_value;
  if (!value->is_boolean()) return JsonError(JsonChild(path, key), "expected true or false");
  return value->get<bool>();
}

absl::StatusOr<int64_t> JsonInt(const Json& object, std::string_view key, int64_t default_value,
                                std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return default_value;
  if (!value->is_number_integer()) return JsonError(JsonChild(path, key), "expected an integer");
  return value->get<int64_t>();
}

absl::StatusOr<std::optional<std::string>> JsonOptionalString(const Json& object,
                                                              std::string_view key,
                                                              std::string_view path) {
  if (!object.is_object()) return NotAnObject(path);
  const Json* value = Member(object, key);
  if (value == nullptr) return std::optional<std::string>();
  if (!value->is_string()) return JsonError(JsonChild(path, key), "expected a string");
  return std::optional<std::string>(value->get<std::string>());
}

}  // namespace mmx::tokenizer
