#include "coordinator/fair_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

std::vector<std::string> Drain(FairQueue<std::string>& q) {
  std::vector<std::string> out;
  while (!q.empty()) out.push_back(q.Pop());
  return out;
}

TEST(FairQueueTest, OneSourceIsFifo) {
  FairQueue<std::string> q;
  for (const char* s : {"a", "b", "c"}) q.Push("", s);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(Drain(q), (std::vector<std::string>{"a", "b", "c"}));
}

TEST(FairQueueTest, AJobQueuedFirstTakesTurnsWithLaterCallers) {
  FairQueue<std::string> q;
  for (const char* item : {"j0", "j1", "j2", "j3"}) q.Push("job-1", item);
  q.Push("", "interactive-0");
  q.Push("", "interactive-1");
  q.Push("job-2", "k0");
  // Round-robin in order of first arrival: job-1, "", job-2, job-1, "", job-1, job-1.
  EXPECT_EQ(Drain(q), (std::vector<std::string>{"j0", "interactive-0", "k0", "j1", "interactive-1", "j2", "j3"}));
}

TEST(FairQueueTest, FrontIsWhatPopReturns) {
  FairQueue<std::string> q;
  q.Push("a", "a0");
  q.Push("b", "b0");
  EXPECT_EQ(q.Front(), "a0");
  EXPECT_EQ(q.Pop(), "a0");
  EXPECT_EQ(q.Front(), "b0");
}

TEST(FairQueueTest, RemoveIfDropsMatchesAndKeepsTheRest) {
  FairQueue<std::string> q;
  q.Push("a", "a0");
  q.Push("a", "x1");
  q.Push("b", "x2");
  q.Push("c", "c0");
  std::vector<std::string> removed;
  q.RemoveIf([](const std::string& s) { return s[0] == 'x'; }, [&](std::string& s) { removed.push_back(s); });
  EXPECT_EQ(removed, (std::vector<std::string>{"x1", "x2"}));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(Drain(q), (std::vector<std::string>{"a0", "c0"}));
}

}  // namespace
}  // namespace mmx::coordinator
