# cuda_library_path [ROOT]: the CUDA library folders this machine has, ':'-separated: the
# toolkit's (lib64, lib, targets/x86_64-linux/lib under ROOT/usr/local/cuda; a stock toolkit has
# no lib), then any pip wheels' (nvidia-*/lib). Folders that do not exist are left out, never an
# error: run.sh sources this under `set -euo pipefail`, where a failing `ls` would end the run
# without a word. ROOT (default /) lets tests/gpu/cuda_lib_path_test.sh stage a toolkit.
cuda_library_path() {
  local root="${1:-}" dirs=() d wheels
  for d in "$root/usr/local/cuda/lib64" "$root/usr/local/cuda/lib" "$root/usr/local/cuda/targets/x86_64-linux/lib"; do
    if [ -d "$d" ]; then dirs+=("$d"); fi
  done
  if [ -z "$root" ] && command -v python3 >/dev/null; then
    wheels=$(python3 -c 'import glob, site; print(":".join(sorted({d for p in site.getsitepackages() for d in glob.glob(p + "/nvidia/*/lib")})))' 2>/dev/null || true)
    if [ -n "$wheels" ]; then dirs+=("$wheels"); fi
  fi
  local IFS=:
  echo "${dirs[*]}"
}
