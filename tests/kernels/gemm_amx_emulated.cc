// gemm_amx.cc over the software tiles of kernels/cpu/amx_emulation.h (in namespace
// mmx::kernels::internal::emulated), so that its layout and blocking run on any machine.
#define MMX_AMX_EMULATE
#include "kernels/cpu/gemm_amx.cc"  // NOLINT: the kernel itself, rebuilt over the model
