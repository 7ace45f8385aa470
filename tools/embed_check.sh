#!/usr/bin/env bash
# The README's Embedding section, checked: extract its C program and
# CMakeLists.txt, install lfp from BUILD_DIR into a scratch prefix, build the
# program there through pkg-config (shared and static) and through
# find_package(lfp), and run each on a freshly trained policy; run the
# installed Python package without LFP_LIBRARY; with --deb, also build the
# Debian package (cpack) and build the program against its unpacked files.
#   tools/embed_check.sh BUILD_DIR [--deb]
set -euo pipefail
build=$(cd "${1:?usage: tools/embed_check.sh BUILD_DIR [--deb]}" && pwd)
cd "$(dirname "$0")/.."
deb=${2:-}
work=$(mktemp -d /tmp/lfp_embed.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "embed_check: FAIL: $*"; exit 1; }

# the two blocks after their markers
extract() { # marker -> the fenced block that follows it
  awk -v m="<!-- $1 -->" '$0 == m { on = 1; next } on && /^```/ { if (in_) exit; in_ = 1; next } in_ { print }' README.md
}
mkdir -p "$work/src"
extract "embed.c" > "$work/src/embed.c"
extract "embed CMakeLists.txt" > "$work/src/CMakeLists.txt"
[ -s "$work/src/embed.c" ] && [ -s "$work/src/CMakeLists.txt" ] || fail "README.md lacks the embed.c or CMakeLists.txt block"
echo "embed_check: extracted embed.c ($(wc -l < "$work/src/embed.c") lines) and CMakeLists.txt from README.md"

prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in include/lfp/lfp.h include/lfp/pol.h include/lfp/lfp_version.h include/lfp/pol_client.h include/lfp/pol_mj.h \
         bin/lfp; do
  [ -e "$prefix/$f" ] || fail "cmake --install did not install $f"
done
libdir=$(dirname "$(find "$prefix" -name liblfp.so.0 | head -1)")
[ -n "$libdir" ] || fail "no liblfp.so.0 installed"
for f in liblfp.a liblfp_node.so.0 liblfp_node.a liblfp_mj.so.0 liblfp_mj.a pkgconfig/lfp.pc pkgconfig/lfp_node.pc \
         pkgconfig/lfp_mj.pc cmake/lfp/lfpConfig.cmake \
         cmake/lfp/lfpConfigVersion.cmake python3/dist-packages/lfp/__init__.py python3/dist-packages/lfp/_install.py; do
  [ -e "$libdir/$f" ] || fail "cmake --install did not install lib/.../$f"
done
[ -e "$prefix/include/lfp/pol_impl.h" ] && fail "the internal pol_impl.h was installed"
echo "embed_check: installed into $prefix (libraries in ${libdir#$prefix/})"

# a policy to run: 4 lift demonstrations, 100 training steps
"$build/lfp" collect --env lift --episodes 4 --seed 3 --out "$work/d.hdf5" > /dev/null 2>&1 || fail "lfp collect"
"$build/lfp" train --data "$work/d.hdf5" --out "$work/p.lfp" --steps 100 --width 32 > /dev/null 2>&1 || fail "lfp train"

run() { # name binary
  "$2" "$work/p.lfp" > "$work/$1.out" 2>&1 || { cat "$work/$1.out"; fail "$1: exit $?"; }
  grep -q "^liblfp [0-9]" "$work/$1.out" || fail "$1: no version line"
  grep -q "^step  0: action\[0\]" "$work/$1.out" || fail "$1: no actions"
  grep -q "^refused: observation .*not finite" "$work/$1.out" || { cat "$work/$1.out"; fail "$1: the NaN was not refused with a sentence"; }
  echo "embed_check: $1 ran: $(head -1 "$work/$1.out")"
}
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shared, through pkg-config
cc -std=c11 -Wall -Werror "$work/src/embed.c" $(pkg-config --cflags --libs lfp) -Wl,-rpath,"$libdir" -o "$work/embed_pc"
# (ldd's output kept first: with pipefail, grep -q closing the pipe early would fail the pipeline)
libs=$(ldd "$work/embed_pc")
grep -q "liblfp.so.0 => $libdir" <<< "$libs" || fail "embed_pc does not load the installed liblfp"
grep -Eq "libhdf5|libzmq|libmujoco|libmsgpack" <<< "$libs" && fail "embed_pc pulls HDF5, ZeroMQ, MuJoCo or msgpack"
run pkg-config "$work/embed_pc"
# static, through pkg-config --static
cc -std=c11 -Wall -Werror "$work/src/embed.c" $(pkg-config --cflags lfp) "$libdir/liblfp.a" \
   $(pkg-config --static --libs-only-l lfp | sed 's/-llfp//') -o "$work/embed_static"
libs=$(ldd "$work/embed_static")
grep -q liblfp <<< "$libs" && fail "embed_static loads liblfp.so"
run static "$work/embed_static"
# CMake's find_package(lfp)
cmake -S "$work/src" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "find_package(lfp)"; }
cmake --build "$work/cmake-build" > "$work/cmake-build.log" 2>&1 || { cat "$work/cmake-build.log"; fail "building with find_package(lfp)"; }
run find_package "$work/cmake-build/embed"

# the installed Python package, finding its library by itself
env -u LFP_LIBRARY PYTHONPATH="$libdir/python3/dist-packages" /usr/bin/python3 - "$work/p.lfp" "$libdir" <<'PY' || fail "the installed Python package"
import os, sys
import numpy as np
import lfp
assert os.path.realpath(lfp.library_path()) == os.path.realpath(os.path.join(sys.argv[2], "liblfp.so.0")), lfp.library_path()
p = lfp.Policy(sys.argv[1])
a = p.act({k: np.zeros(d) for k, d in zip(p.obs_keys, p.obs_dims)})
assert a.shape == (p.action_dim,)
print(f"embed_check: the installed Python package loaded {lfp.library_path()} and acted: {p}")
PY

if [ "$deb" = "--deb" ]; then
  (cd "$build" && cpack -G DEB > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack -G DEB"; }
  pkg=$(ls -t "$build"/lfp_*.deb | head -1)
  dpkg-deb -f "$pkg" Depends > "$work/depends"
  grep -q libopenblas "$work/depends" || fail "$pkg does not depend on OpenBLAS"
  echo "embed_check: $(basename "$pkg"): Depends: $(cat "$work/depends")"
  mkdir "$work/root"
  dpkg-deb -x "$pkg" "$work/root"
  dlib=$(dirname "$(find "$work/root" -name liblfp.so.0 | head -1)")
  case "$dlib" in "$work/root/usr/"*) ;; *) fail "the package installs liblfp outside /usr ($dlib)";; esac
  PKG_CONFIG_PATH="$dlib/pkgconfig" cc -std=c11 -Wall -Werror "$work/src/embed.c" \
    $(PKG_CONFIG_PATH="$dlib/pkgconfig" pkg-config --cflags --libs lfp) -Wl,-rpath,"$dlib" -o "$work/embed_deb"
  run deb "$work/embed_deb"
fi
echo "embed_check: passed"
