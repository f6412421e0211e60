// A fingerprint of a checkpoint as mmx sees it: config.json's parsed values and every tensor's
// name, dtype and shape (headers, not data: computing it reads no weights). The coordinator and
// each worker compute it from their own copy of the directory; a mismatch means a worker would
// load a different model than the coordinator planned for.
#pragma once

#include <string>

#include "model/checkpoint.h"

namespace mmx::model {

// 16 hex digits (FNV-1a 64 over the canonical config JSON and the sorted tensor headers).
std::string CheckpointFingerprint(const Checkpoint& checkpoint);

}  // namespace mmx::model
