#!/usr/bin/env bash
# Idempotent setup: install the Debian packages lfp needs (only those missing),
# then configure and build a Release build in build/.
#   tools/setup.sh            packages + Release build
#   tools/setup.sh --no-build packages only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake pkg-config   # toolchain
  libopenblas-dev                    # flowcore: BLAS
  libhdf5-dev                        # datasets: Robomimic HDF5
  libmujoco-dev libqhull-dev         # envs: MuJoCo 2.2.2 (its CMake config needs libqhull_r headers)
  libzmq3-dev libmsgpack-dev         # policy: the ZeroMQ controller node
  libwebsockets-dev                  # policy: the node's websocket side (openpi's protocol)
  libcjson-dev                       # policy: the mapping files of pol_mj (the user's own MuJoCo model); lfp report
  libegl-dev libegl-mesa0 libgl1-mesa-dri  # envs: headless rendering (EGL surfaceless, Mesa's llvmpipe)
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev  # envs: MP4 (H.264 through libx264)
  libssl-dev                         # tools: SHA-256 of training data, base64 of the report's videos
  libopenmpi-dev openmpi-bin         # tools: lfp train / eval / collect under mpirun
  clang libclang-rt-dev              # tests: the sanitizer build and libFuzzer
  python3-numpy python3-h5py python3-zmq python3-msgpack  # interoperability tests (/usr/bin/python3)
  python3-websockets                 # tests: openpi's websocket client side (asyncio, version 10)
  ffmpeg chromium fonts-dejavu-core  # tests: an independent MP4 reader (ffprobe); the report in a real browser
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--no-build" ] && exit 0
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)"
echo "setup: built build/lfp"
