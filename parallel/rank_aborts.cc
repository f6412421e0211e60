#include "parallel/rank_aborts.h"

#include <utility>

namespace mmx::parallel {

RankAborts::RankAborts(int ranks, std::function<void(int rank)> abort_own)
    : done_(new std::atomic<bool>[ranks]), ranks_(ranks), abort_own_(std::move(abort_own)) {
  for (int r = 0; r < ranks; ++r) done_[r].store(false);
}

bool RankAborts::AbortOwnIfMarked(int rank) {
  if (!marked_.load()) return false;
  // Only rank `rank`'s thread calls this for `rank`: the exchange is for AbortRemaining's sake.
  if (!done_[rank].exchange(true)) abort_own_(rank);
  return true;
}

std::vector<int> RankAborts::AbortRemaining() {
  std::vector<int> intact;
  for (int r = 0; r < ranks_; ++r) {
    if (done_[r].load()) continue;
    if (marked_.load()) {
      done_[r].store(true);
      abort_own_(r);
    } else {
      intact.push_back(r);
    }
  }
  return intact;
}

}  // namespace mmx::parallel
