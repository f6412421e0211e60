#include "coordinator/utf8_fields.h"

#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "model/tokenizer/utf8.h"

namespace mmx::coordinator {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Offset of the first byte that does not start or continue a valid UTF-8 character; the size
// when there is none.
size_t FirstBadByte(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t length;
    bool valid = true;
    tokenizer::DecodeUtf8(text, pos, &length, &valid);
    if (!valid) return pos;
    pos += length;
  }
  return text.size();
}

absl::Status CheckString(const std::string& value, const std::string& path) {
  const size_t bad = FirstBadByte(value);
  if (bad == value.size()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(path, " is not valid UTF-8 (bad byte at offset ", bad,
                   "); send text as UTF-8, or tokens as prompt_token_ids"));
}

absl::Status Check(const Message& message, const std::string& prefix) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);  // set fields only, in field-number order
  for (const FieldDescriptor* field : fields) {
    const bool is_string = field->type() == FieldDescriptor::TYPE_STRING;
    const bool is_message = field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE;
    if (!is_string && !is_message) continue;
    const std::string name = prefix.empty() ? field->name() : absl::StrCat(prefix, ".", field->name());
    if (!field->is_repeated()) {
      absl::Status st = is_string ? CheckString(reflection->GetString(message, field), name)
                                  : Check(reflection->GetMessage(message, field), name);
      if (!st.ok()) return st;
      continue;
    }
    const int count = reflection->FieldSize(message, field);
    for (int i = 0; i < count; ++i) {
      const std::string item = absl::StrCat(name, "[", i, "]");
      absl::Status st = is_string ? CheckString(reflection->GetRepeatedString(message, field, i), item)
                                  : Check(reflection->GetRepeatedMessage(message, field, i), item);
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckUtf8Fields(const Message& message) { return Check(message, ""); }

}  // namespace mmx::coordinator
