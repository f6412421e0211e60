// Tripwire: the data-plane (wire.proto) and control-plane (control.proto) schemas may change only
// together with PROTOCOL_VERSION_CURRENT, which workers and the coordinator compare at Register.
// Each version's schema is pinned here by a hash of the protos' descriptors (their structure:
// messages, fields, numbers, types; comments do not count). A change to either file fails this
// test until the version is bumped in control.proto and the new hash recorded below.
#include <cstdint>
#include <string>

#include "gtest/gtest.h"
#include "mmx/v1/control.pb.h"
#include "mmx/v1/wire.pb.h"

namespace mmx {
namespace {

// FNV-1a, 64 bits: stable across platforms and library versions.
uint64_t Fnv1a(const std::string& bytes, uint64_t hash = 0xcbf29ce484222325ull) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// The descriptors' text form: every message, enum, field name, number, type and label.
uint64_t SchemaHash() {
  const std::string wire = v1::StepHeader::descriptor()->file()->DebugString();
  const std::string control = v1::Register::descriptor()->file()->DebugString();
  return Fnv1a(control, Fnv1a(wire));
}

struct PinnedVersion {
  int version;
  uint64_t schema_hash;
};
// One row per protocol version, newest last. Append a row when bumping the version.
constexpr PinnedVersion kPinned[] = {
    {1, 0xfad307a25ceac489ull},
    {2, 0xa84aeebeaf882f76ull},  // logits rows and error codes on the data plane, weight bytes in timings
    {3, 0xe61e71b3ce129ca2ull},  // failover: sequence epochs, standby, heartbeats, leaving/dismissed
    {4, 0xb9369ca7db83bbabull},  // several steps in flight: tokens to the coordinator's inbox; Register.host_cpus
    {5, 0x79b4f0fadd654795ull},  // a 128-bit cluster token (Assignment.cluster_token is bytes)
    {6, 0xec3114d73163faf0ull},  // Ready.tensor_digests: workers prove the data they loaded
    {7, 0x54626483c8bf8438ull},  // prompt log-probabilities: StepSequence.next_token_ids, TokensHeader.prompt
    {8, 0xc5c99f1645cf6e23ull},  // no message changed: workers keep the KV cache in serving.kv_dtype (bf16 pages)
    {9, 0x7cf7ffb5944d0aa9ull},  // activation rows name their dtype (RowsDType): serving.wire_dtype bf16
    {10, 0xc77f8f399bda1ec0ull},  // Peer.shares_cores: automatic busy-poll on workers
};

TEST(ProtocolVersionTest, SchemaChangesOnlyWithANewProtocolVersion) {
  const PinnedVersion& newest = kPinned[sizeof(kPinned) / sizeof(kPinned[0]) - 1];
  const int current = v1::PROTOCOL_VERSION_CURRENT;
  ASSERT_EQ(current, newest.version)
      << "PROTOCOL_VERSION_CURRENT is " << current << " but the newest pinned version here is " << newest.version
      << ": append {" << current << ", 0x" << std::hex << SchemaHash() << "ull} to kPinned";
  EXPECT_EQ(SchemaHash(), newest.schema_hash)
      << "wire.proto or control.proto changed (schema hash 0x" << std::hex << SchemaHash()
      << ") without a new PROTOCOL_VERSION_CURRENT: bump it in proto/mmx/v1/control.proto (workers and "
         "coordinators of different versions must refuse each other) and append the new version and this "
         "hash to kPinned";
}

TEST(ProtocolVersionTest, HashIgnoresCommentsButSeesFieldNumbers) {
  // DebugString carries structure, not comments: a reworded comment needs no new version.
  const std::string wire = v1::StepHeader::descriptor()->file()->DebugString();
  EXPECT_EQ(wire.find("//"), std::string::npos);
  EXPECT_NE(wire.find("step_id = 1"), std::string::npos);
}

}  // namespace
}  // namespace mmx
