#!/usr/bin/env bash
# Packs Mitsuba 3 (llvm_ad_rgb) and an LLVM for a lent GPU machine, which has no registry and no libLLVM, into
# .dev/mi.tar.xz (~43 MB, under the 64 MiB a device call carries) for scripts/gpu_session.sh's CPU render bench:
#   - the cp312 wheels of mitsuba and drjit (the device's Python is 3.12), less the variants, plugins and data that
#     the bundled bench scenes do not use (the plugins kept are those the bench loads, found with LD_DEBUG=files);
#   - this machine's libLLVM-19 (Debian bookworm; `make sysdeps-llvm`) with libedit/libbsd/libmd, and stub
#     libz3.so.4 / libxml2.so.2 that only satisfy the loader: LLVM links them for the static analyzer and for
#     Windows manifests, which drjit's JIT never calls (a stub aborts if it is ever called). With the real ones the
#     pack was 76 MB.
# gpu_session.sh unpacks it to /tmp/mi and sets PYTHONPATH, LD_LIBRARY_PATH and DRJIT_LIBLLVM_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
LLVM=${LLVM:-/usr/lib/x86_64-linux-gnu/libLLVM-19.so}
PY=${PY:-.venv/bin/python}
KEEP="area aov bitmap box checkerboard conductor constant cube d65 dielectric diffuse directional disk envmap gaussian
hdrfilm independent mask merge obj path perspective plastic ply point rectangle regular roughconductor roughdielectric
roughplastic sphere spot srgb thindielectric twosided uniform"
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d "$w/whl" mitsuba==3.9.1 drjit==1.5.0
mkdir -p "$w/pack/stubllvm"
(cd "$w/pack" && for f in "$w"/whl/*.whl; do unzip -q -o "$f" -x '*.dist-info/*'; done)
m=$w/pack/mitsuba
rm -rf "$m"/cuda_* "$m"/llvm_ad_mono* "$m"/llvm_ad_spectral* "$m"/scalar_mono* "$m"/scalar_spectral* "$m/include" \
    "$m/mitsuba_stubs" "$m/cmake" "$m/data/srgb.coeff" "$m/data/sunsky" "$w/pack/drjit/include"
for f in "$m"/plugins/*.so; do
    case " $(echo $KEEP) " in *" $(basename "$f" .so) "*) ;; *) rm "$f" ;; esac
done
s=$w/pack/stubllvm
cp -L "$LLVM" "$s/libLLVM.so.19.1"
for lib in libedit.so.2 libbsd.so.0 libmd.so.0; do cp -L "/lib/x86_64-linux-gnu/$lib" "$s/"; done
syms=$(nm -D --undefined-only --with-symbol-versions "$s/libLLVM.so.19.1" | awk '{print $2}')
{ echo '#include <stdlib.h>'; for x in $(echo "$syms" | grep '^Z3_'); do echo "void $x(void) { abort(); }"; done; } \
    > "$w/z3.c"
{ echo '#include <stdlib.h>'
  for x in $(echo "$syms" | grep '^xml' | cut -d@ -f1); do
      if [ "$x" = xmlFree ]; then echo 'void *xmlFree = 0;'; else echo "void $x(void) { abort(); }"; fi
  done; } > "$w/xml.c"
v() { echo "$syms" | grep "@$1\$" | cut -d@ -f1 | sed 's/$/;/' | tr '\n' ' '; }
printf 'LIBXML2_2.4.30 { global: %s local: *; };\nLIBXML2_2.6.0 { global: %s } LIBXML2_2.4.30;\n' \
    "$(v LIBXML2_2.4.30)" "$(v LIBXML2_2.6.0)" > "$w/xml.map"
gcc -shared -fPIC -O1 -Wl,-soname,libz3.so.4 -o "$s/libz3.so.4" "$w/z3.c"
gcc -shared -fPIC -O1 -Wl,-soname,libxml2.so.2 -Wl,--version-script="$w/xml.map" -o "$s/libxml2.so.2" "$w/xml.c"
mkdir -p .dev
(cd "$w/pack" && tar cf - mitsuba drjit stubllvm | xz -T0 -6 > "$w/mi.tar.xz")
mv "$w/mi.tar.xz" .dev/mi.tar.xz
ls -l .dev/mi.tar.xz
