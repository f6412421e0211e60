#include "parallel/stage_compute_factory.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

#ifdef MMX_HAVE_CUDA
#include "model/cuda/cuda_stage_compute.h"
#include "parallel/cuda/cuda_ranked_stage_compute.h"
#endif

namespace mmx::parallel {

using model::DeviceInfo;
using model::DeviceSpec;
using model::StageCompute;
using model::WeightsView;

namespace {
#ifdef MMX_HAVE_CUDA
namespace cuda = model::cuda;
#else
absl::Status NoCudaBuild(const DeviceSpec& device) {
  return absl::FailedPreconditionError(absl::StrCat(
      "--device ", device.ToString(), ": this build has no CUDA backend (no CUDA toolkit was found when it was "
      "configured); rebuild on a machine with /usr/local/cuda, or with -DMMX_CUDA=ON to insist"));
}
#endif
}  // namespace

absl::StatusOr<DeviceInfo> QueryCudaDevice(const DeviceSpec& device) {
  if (!device.is_cuda()) return absl::InvalidArgumentError("QueryCudaDevice: not a CUDA device");
#ifdef MMX_HAVE_CUDA
  if (device.ordinals.size() > 1) {
    // The GPUs' sum: the planner sees one worker with all of their memory.
    DeviceInfo total;
    for (int ordinal : device.ordinals) {
      MMX_ASSIGN_OR_RETURN(DeviceInfo one, cuda::QueryDevice(ordinal));
      total.name += (total.name.empty() ? "" : ", ") + one.name;
      total.total_bytes += one.total_bytes;
      total.free_bytes += one.free_bytes;
      total.bandwidth_gbs += one.bandwidth_gbs;
    }
    return total;
  }
  return cuda::QueryDevice(device.ordinals.front());
#else
  return NoCudaBuild(device);
#endif
}

absl::StatusOr<std::unique_ptr<StageCompute>> MakeStageCompute(const DeviceSpec& device, const WeightsView& weights,
                                                               kernels::ActivationPrecision precision,
                                                               const model::UploadProgressFn& progress) {
  if (!device.is_cuda()) return model::MakeCpuStageCompute(weights);
#ifdef MMX_HAVE_CUDA
  if (device.ordinals.size() > 1) return CreateCudaRankedStageCompute(device.ordinals, weights, precision, progress);
  return cuda::CreateCudaStageCompute(device.ordinals.front(), weights, precision, progress);
#else
  return NoCudaBuild(device);
#endif
}

}  // namespace mmx::parallel
