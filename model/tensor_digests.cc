#include "model/tensor_digests.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "model/checkpoint_fingerprint.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

constexpr int kCacheVersion = 1;

// What the cache records of a shard file to tell it is the one it digested.
Json FileStamp(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto mtime = fs::last_write_time(path, ec);
  return Json{{"size", ec ? 0 : size},
              {"mtime_ns", ec ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count()}};
}

// The cache's digests, if it is of this version and every shard file's stamp matches.
std::optional<TensorDigests> ReadCache(const Checkpoint& checkpoint, const std::string& cache_path) {
  std::ifstream in(cache_path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  try {
    const Json cache = Json::parse(text.str());
    if (cache.value("version", 0) != kCacheVersion) return std::nullopt;
    const Json& files = cache.at("files");
    TensorDigests digests;
    for (const std::string& name : checkpoint.TensorNames()) {
      const TensorInfo* info = checkpoint.Find(name);
      const std::string file = fs::path(info->file).filename().string();
      if (!files.contains(file) || files.at(file) != FileStamp(info->file)) return std::nullopt;
      const std::string hex = cache.at("tensors").at(name).get<std::string>();
      if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
      digests[name] = TensorDigest{file, absl::HexStringToBytes(hex)};
    }
    return digests;
  } catch (const Json::exception&) {
    return std::nullopt;  // a broken cache is recomputed
  }
}

void WriteCache(const Checkpoint& checkpoint, const TensorDigests& digests, const std::string& cache_path) {
  Json files = Json::object(), tensors = Json::object();
  for (const auto& [name, digest] : digests) {
    tensors[name] = absl::BytesToHexString(digest.sha256);
    const TensorInfo* info = checkpoint.Find(name);
    files[digest.file] = FileStamp(info->file);
  }
  const std::string temporary = absl::StrCat(cache_path, ".tmp.", getpid());
  {
    std::ofstream out(temporary);
    out << Json{{"version", kCacheVersion}, {"files", files}, {"tensors", tensors}}.dump(1);
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(temporary, cache_path, ec);  // whole or not at all
  if (ec) fs::remove(temporary, ec);
}

}  // namespace

std::string Sha256(const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

absl::StatusOr<TensorDigests> ComputeTensorDigests(const Checkpoint& checkpoint,
                                                   const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    if (checkpoint.Find(name) == nullptr) {
      return absl::NotFoundError(absl::StrCat(checkpoint.dir(), ": no tensor '", name, "' to digest"));
    }
  }
  std::vector<TensorDigest> each(names.size());
  ThreadPool::Default().RunTasks(static_cast<int64_t>(names.size()), [&](int64_t i) {
    const TensorInfo* info = checkpoint.Find(names[i]);
    each[i] = TensorDigest{fs::path(info->file).filename().string(), Sha256(info->data, info->num_bytes)};
  });
  TensorDigests digests;
  for (size_t i = 0; i < names.size(); ++i) digests[names[i]] = std::move(each[i]);
  return digests;
}

absl::StatusOr<TensorDigests> CachedTensorDigests(const Checkpoint& checkpoint, const std::string& cache_path,
                                                  bool* computed) {
  if (!cache_path.empty()) {
    if (std::optional<TensorDigests> cached = ReadCache(checkpoint, cache_path)) {
      if (computed != nullptr) *computed = false;
      return *std::move(cached);
    }
  }
  MMX_ASSIGN_OR_RETURN(TensorDigests digests, ComputeTensorDigests(checkpoint, checkpoint.TensorNames()));
  if (!cache_path.empty()) WriteCache(checkpoint, digests, cache_path);
  if (computed != nullptr) *computed = true;
  return digests;
}

std::string DigestCachePath(const Checkpoint& checkpoint, const std::string& state_dir) {
  if (!state_dir.empty()) {
    std::string key = CheckpointFingerprint(checkpoint);
    std::replace_if(key.begin(), key.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); }, '-');
    return (fs::path(state_dir) / absl::StrCat("tensor-digests-", key, ".json")).string();
  }
  if (access(checkpoint.dir().c_str(), W_OK) == 0) return (fs::path(checkpoint.dir()) / ".mmx-tensor-digests.json").string();
  return "";
}

absl::Status CompareTensorDigests(const TensorDigests& expected, const TensorDigests& reported) {
  if (reported.empty()) {
    return absl::FailedPreconditionError("reported no tensor digests: a worker must prove what it loaded");
  }
  for (const auto& [name, digest] : reported) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      return absl::FailedPreconditionError(absl::StrCat("tensor '", name, "' is not in the coordinator's checkpoint"));
    }
    if (it->second.sha256 != digest.sha256) {
      return absl::FailedPreconditionError(absl::StrCat(
          "tensor '", name, "' in its ", digest.file,
          " differs from the coordinator's checkpoint (same header, other data): give every machine the same "
          "checkpoint files"));
    }
  }
  return absl::OkStatus();
}

}  // namespace mmx::model
