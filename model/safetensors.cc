// Safetensors reading (mmap + a header validated field by field) and writing (streamed).
// Every header field comes from an untrusted file, so each is checked before it is used to
// form a pointer; error messages name the file and the tensor.
#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

using Json = nlohmann::json;

// The format's own bound on the header (safetensors' MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// O_DIRECT writes: alignment that satisfies every common logical block size, and a staging
// buffer large enough that each write keeps the disk busy.
constexpr size_t kDirectAlignment = 4096;
constexpr size_t kStagingBytes = size_t{8} << 20;

// Safetensors dtypes that are valid in the format but that mmx does not compute with.
const std::set<std::string>& OtherSafetensorsDTypes() {
  static const auto* kNames = new std::set<std::string>{
      "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F64",
      "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "E8M0"};
  return *kNames;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::Status FileError(int err, const std::string& what, const std::string& path) {
  return absl::ErrnoToStatus(err, absl::StrCat(what, " ", path));
}

absl::Status WriteAll(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FileError(errno, "cannot write", path);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Parses one header entry into `info` (everything but `data`), checking it against the data
// section of `data_size` bytes. `begin` receives the entry's start offset.
absl::Status ParseEntry(const std::string& path, const std::string& name, const Json& entry,
                        uint64_t data_size, TensorInfo& info, uint64_t& begin) {
  const std::string where = absl::StrCat(path, ": tensor '", name, "'");
  auto corrupt = [&](const std::string& what) {
    return absl::DataLossError(absl::StrCat(where, " ", what, "; the file is corrupt"));
  };
  if (!entry.is_object()) return corrupt("has a header entry that is not a JSON object");

  auto dtype_it = entry.find("dtype");
  if (dtype_it == entry.end() || !dtype_it->is_string()) return corrupt("has no string 'dtype'");
  const std::string dtype_name = dtype_it->get<std::string>();
  absl::StatusOr<DType> dtype = ParseDType(dtype_name);
  if (!dtype.ok()) {
    if (OtherSafetensorsDTypes().count(dtype_name) > 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, " has dtype ", dtype_name,
                       "; mmx reads BF16, F16 and F32 tensors (convert the checkpoint)"));
    }
    return corrupt(absl::StrCat("has unknown dtype '", dtype_name, "'"));
  }
  info.dtype = *dtype;

  auto shape_it = entry.find("shape");
  if (shape_it == entry.end() || !shape_it->is_array()) return corrupt("has no 'shape' list");
  uint64_t num_elements = 1;
  bool overflow = false;
  for (const Json& dim : *shape_it) {
    if (!dim.is_number_unsigned() || dim.get<uint64_t>() > (uint64_t{1} << 62)) {
      return corrupt("has a shape " + shape_it->dump() + " that is not a list of sizes");
    }
    info.shape.push_back(dim.get<int64_t>());
    overflow |= __builtin_mul_overflow(num_elements, dim.get<uint64_t>(), &num_elements);
  }
  uint64_t expected_bytes = 0;
  overflow |= __builtin_mul_overflow(num_elements, DTypeSize(info.dtype), &expected_bytes);
  if (overflow) return corrupt("has a shape " + shape_it->dump() + " too large to address");

  auto offsets_it = entry.find("data_offsets");
  if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return corrupt("has no 'data_offsets' [begin, end] pair of byte offsets");
  }
  begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  const std::string offsets = absl::StrCat("data_offsets [", begin, ", ", end, "]");
  if (end > data_size) {
    return absl::DataLossError(absl::StrCat(where, " ", offsets,
                                            " end past the end of the data section (", data_size,
                                            " bytes); the file is truncated or corrupt"));
  }
  if (begin > end) return corrupt(offsets + " begin after end");
  if (end - begin != expected_bytes) {
    return corrupt(absl::StrCat(offsets, " span ", end - begin, " bytes but shape ",
                                ShapeString(info.shape), " of ", dtype_name, " needs ",
                                expected_bytes));
  }
  info.num_bytes = expected_bytes;
  return absl::OkStatus();
}

}  // namespace

int64_t TensorInfo::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

uint64_t TensorSpec::num_bytes() const {
  uint64_t n = DTypeSize(dtype);
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;

  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return FileError(errno, "cannot open", path);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return FileError(err, "cannot stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    return absl::DataLossError(absl::StrCat(
        path, ": file is ", file_size,
        " bytes, too short for the 8-byte header length; the file is truncated or corrupt"));
  }
  void* map = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (map == MAP_FAILED) return FileError(map_errno, "cannot mmap", path);
  file->map_ = map;
  file->map_size_ = file_size;
  // Checkpoint maps are hundreds of GB in total: keep them out of core dumps.
  ::madvise(map, file_size, MADV_DONTDUMP);

  const auto* bytes = static_cast<const uint8_t*>(map);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];  // little-endian
  if (header_size < 2) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_size,
                                            " is too small (the smallest header, '{}', is 2 "
                                            "bytes); the file is corrupt"));
  }
  if (header_size > kMaxHeaderBytes) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_size,
                                            " exceeds the format's limit of ", kMaxHeaderBytes,
                                            " bytes; the file is corrupt or not safetensors"));
  }
  if (header_size > file_size - 8) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_size,
                                            " runs past the end of the file (", file_size,
                                            " bytes); the file is truncated or corrupt"));
  }
  const uint64_t data_size = file_size - 8 - header_size;
  const uint8_t* data = bytes + 8 + header_size;

  Json header;
  try {
    header = Json::parse(bytes + 8, bytes + 8 + header_size);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1E400)
    return absl::DataLossError(absl::StrCat(path, ": header is not valid JSON (", e.what(),
                                            "); the file is corrupt"));
  }
  if (!header.is_object()) {
    return absl::DataLossError(
        absl::StrCat(path, ": header is not a JSON object; the file is corrupt"));
  }

  std::vector<std::pair<uint64_t, const TensorInfo*>> spans;  // (begin, tensor)
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) {
        return absl::DataLossError(
            absl::StrCat(path, ": __metadata__ is not a JSON object; the file is corrupt"));
      }
      continue;
    }
    TensorInfo info;
    info.name = name;
    info.file = path;
    uint64_t begin = 0;
    MMX_RETURN_IF_ERROR(ParseEntry(path, name, entry, data_size, info, begin));
    info.data = data + begin;
    const TensorInfo& stored = file->tensors_.emplace(name, std::move(info)).first->second;
    if (stored.num_bytes > 0) spans.emplace_back(begin, &stored);  // empty tensors overlap nothing
  }

  // Overlap check: sorted by start, each tensor must begin at or after the previous one's end.
  std::sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->name < b.second->name;
  });
  for (size_t i = 1; i < spans.size(); ++i) {
    const auto& [prev_begin, prev] = spans[i - 1];
    const auto& [begin, cur] = spans[i];
    if (begin < prev_begin + prev->num_bytes) {
      return absl::DataLossError(absl::StrCat(
          path, ": tensor '", cur->name, "' data_offsets [", begin, ", ", begin + cur->num_bytes,
          "] overlap tensor '", prev->name, "' [", prev_begin, ", ", prev_begin + prev->num_bytes,
          "]; the file is corrupt"));
    }
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_ != nullptr) ::munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

absl::StatusOr<std::unique_ptr<SafetensorsWriter>> SafetensorsWriter::Create(
    const std::string& path, std::vector<TensorSpec> specs, Mode mode) {
  Json header = Json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const TensorSpec& spec : specs) {
    if (spec.name == "__metadata__" || header.contains(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor name '", spec.name, "' is reserved or used twice"));
    }
    for (int64_t d : spec.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(path, ": tensor '", spec.name,
                                                       "' has negative shape ",
                                                       ShapeString(spec.shape)));
      }
    }
    const uint64_t end = offset + spec.num_bytes();
    header[spec.name] = {{"dtype", DTypeName(spec.dtype)},
                         {"shape", spec.shape},
                         {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (the format's convention).
  text.append((8 - text.size() % 8) % 8, ' ');

  std::unique_ptr<SafetensorsWriter> writer(new SafetensorsWriter());
  writer->path_ = path;
  writer->partial_path_ = path + ".partial";
  writer->data_size_ = offset;
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (mode == Mode::kDirect) {
    writer->fd_ = ::open(writer->partial_path_.c_str(), flags | O_DIRECT, 0644);
    if (writer->fd_ >= 0) {
      void* staging = nullptr;
      if (::posix_memalign(&staging, kDirectAlignment, kStagingBytes) != 0) {
        return absl::ResourceExhaustedError("cannot allocate the O_DIRECT staging buffer");
      }
      writer->staging_.reset(static_cast<uint8_t*>(staging));
      writer->direct_ = true;
    }
  }
  if (writer->fd_ < 0) writer->fd_ = ::open(writer->partial_path_.c_str(), flags, 0644);
  if (writer->fd_ < 0) return FileError(errno, "cannot create", writer->partial_path_);
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  MMX_RETURN_IF_ERROR(writer->Append(length, sizeof length));
  MMX_RETURN_IF_ERROR(writer->Append(text.data(), text.size()));
  return writer;
}

void SafetensorsWriter::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

absl::Status SafetensorsWriter::Append(const void* data, size_t size) {
  if (staging_ == nullptr) return WriteAll(fd_, data, size, partial_path_);
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const size_t n = std::min(size, kStagingBytes - staged_);
    std::memcpy(staging_.get() + staged_, p, n);
    staged_ += n;
    p += n;
    size -= n;
    if (staged_ == kStagingBytes) MMX_RETURN_IF_ERROR(FlushStaging(kStagingBytes));
  }
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::FlushStaging(size_t size) {
  // O_DIRECT needs aligned memory, offsets and sizes: every flush but the last is a whole
  // staging buffer, so the file offset stays aligned.
  const size_t aligned = direct_ ? size / kDirectAlignment * kDirectAlignment : 0;
  absl::Status status = WriteAll(fd_, staging_.get(), aligned, partial_path_);
  if (absl::IsInvalidArgument(status) || aligned != size) {
    // A filesystem that refuses this O_DIRECT write, or the unaligned tail: go on buffered,
    // from wherever the direct writes stopped.
    const off_t position = ::lseek(fd_, 0, SEEK_CUR);
    const int flags = ::fcntl(fd_, F_GETFL);
    if (position < 0 || flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
      return FileError(errno, "cannot turn off O_DIRECT on", partial_path_);
    }
    direct_ = false;
    const size_t done = static_cast<size_t>(static_cast<uint64_t>(position) - flushed_);
    status = WriteAll(fd_, staging_.get() + done, size - done, partial_path_);
  }
  MMX_RETURN_IF_ERROR(status);
  flushed_ += size;
  std::memmove(staging_.get(), staging_.get() + size, staged_ - size);
  staged_ -= size;
  return absl::OkStatus();
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!closed_ && !partial_path_.empty()) ::unlink(partial_path_.c_str());
}

absl::Status SafetensorsWriter::Write(const void* data, size_t size) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is closed"));
  if (size > data_size_ - bytes_written_) {
    return absl::FailedPreconditionError(
        absl::StrCat(path_, ": writing ", size, " more bytes would exceed the ", data_size_,
                     " bytes the header declares (", bytes_written_, " written)"));
  }
  MMX_RETURN_IF_ERROR(Append(data, size));
  bytes_written_ += size;
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::Close() {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, ": writer is closed"));
  if (bytes_written_ != data_size_) {
    return absl::FailedPreconditionError(absl::StrCat(path_, ": only ", bytes_written_, " of ",
                                                      data_size_, " data bytes were written"));
  }
  if (staging_ != nullptr && staged_ > 0) MMX_RETURN_IF_ERROR(FlushStaging(staged_));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) return FileError(errno, "cannot close", partial_path_);
  if (::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    return FileError(errno, "cannot rename into place", path_);
  }
  closed_ = true;
  return absl::OkStatus();
}

absl::Status WriteSafetensors(const std::string& path, const std::vector<TensorToWrite>& tensors) {
  std::vector<TensorSpec> specs;
  for (const TensorToWrite& t : tensors) {
    TensorSpec spec{t.name, t.dtype, t.shape};
    if (spec.num_bytes() != t.bytes.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor '", t.name, "' has ", t.bytes.size(), " bytes but shape ",
                       ShapeString(t.shape), " of ", DTypeName(t.dtype), " needs ",
                       spec.num_bytes()));
    }
    specs.push_back(std::move(spec));
  }
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsWriter> writer,
                       SafetensorsWriter::Create(path, std::move(specs)));
  for (const TensorToWrite& t : tensors) {
    MMX_RETURN_IF_ERROR(writer->Write(t.bytes.data(), t.bytes.size()));
  }
  return writer->Close();
}

}  // namespace mmx::model
