# Radiant: the two commands are `make demo` and `make test`; everything else is here for developers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# Torch pin: the CPU wheel. On a machine that brings its own torch (a CUDA box) use `make test TORCH=`.
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-full bench refs cuda-check nerfstudio-check sysdeps sysdeps-llvm sysdeps-xvfb clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# System libraries the Python wheels need (Open3D links libusb). Only installs where we are root and it is missing.
sysdeps:
	@if ! ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "installing libusb-1.0-0 (needed by open3d)"; \
	        (apt-get update -qq && apt-get install -y -qq libusb-1.0-0) >/dev/null; \
	    else echo "warning: libusb-1.0 missing; open3d-based tests and benches will be skipped"; fi; \
	fi

# Xvfb + the X libraries of Qt's xcb plugin: the viewer test that opens a real window (skipped without them).
XCB_LIBS := libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 \
            libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 libxkbcommon-x11-0
sysdeps-xvfb:
	@if ! command -v xvfb-run >/dev/null || ! ldconfig -p 2>/dev/null | grep -q 'libxcb-icccm.so.4'; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "installing xvfb and Qt's X libraries (viewer window test)"; \
	        (apt-get update -qq && apt-get install -y -qq xvfb xauth $(XCB_LIBS)) >/dev/null \
	            || echo "warning: xvfb not installed; the real-window viewer test will be skipped"; \
	    else echo "warning: xvfb missing; the real-window viewer test will be skipped"; fi; \
	fi

# LLVM for Mitsuba's llvm_ad_rgb variant, the speed anchor of `radiant bench render` (it falls back to scalar_rgb).
sysdeps-llvm:
	@if [ ! -e /usr/lib/x86_64-linux-gnu/libLLVM-19.so ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libllvm19 (Mitsuba's LLVM backend)"; \
	    (apt-get update -qq && apt-get install -y -qq libllvm19) >/dev/null || echo "warning: libllvm19 not installed"; \
	fi

$(VENV)/.installed-%: pyproject.toml | $(VENV)/bin/python
	@echo "installing radiant[$*] into $(VENV)"
	@if [ -n "$(TORCH)" ]; then $(PIP) install "$(TORCH)"; fi
	$(PIP) install -e ".[$*]"
	@touch $@

demo: sysdeps $(VENV)/.installed-bench $(VENV)/.installed-viewer
	@mkdir -p out
	$(VENV)/bin/radiant render scenes/cbox/cbox.xml --out out/cbox.exr --spp 64 --aov albedo,normal,depth --force
	$(VENV)/bin/radiant render scenes/cbox/cbox.xml --out out/cbox.png --spp 64 --force
	$(VENV)/bin/radiant render scenes/spheres/spheres.xml --out out/spheres.png --spp 64 --force
	$(VENV)/bin/radiant render scenes/lights/lights.xml --out out/lights.png --spp 64 -D width=320 -D height=240 --force
	$(VENV)/bin/radiant render scenes/materials/materials_neural.xml --out out/materials_neural.png --spp 16 --force
	$(VENV)/bin/radiant view scenes/cbox/cbox.xml --screenshot out/viewer.png --spp 16 --force
	$(VENV)/bin/radiant bench rays --quick --out out/bench/rays.jsonl
	$(VENV)/bin/radiant make-dataset scenes/object/object.xml --orbit --views 24 --width 160 --height 120 --out out/recon/object-data --force
	$(VENV)/bin/radiant reconstruct out/recon/object-data --out out/recon/object-run --iters 1500 --force
	$(VENV)/bin/radiant evaluate out/recon/object-run/mesh.ply out/recon/object-data/gt.ply --data out/recon/object-data --json out/recon/object-eval.json --force
	$(VENV)/bin/radiant view out/recon/object-run --screenshot out/viewer_recon.png --force
	@echo "results under out/: cbox.exr (+ AOVs), cbox.png, spheres.png, lights.png, materials_neural.png, viewer.png,"
	@echo "  bench/rays.jsonl, recon/object-run/{mesh.ply,report.html}, recon/object-eval.json (1500 steps, 3-6 minutes), viewer_recon.png"
	@echo "interactive: $(VENV)/bin/radiant view scenes/cbox/cbox.xml, $(VENV)/bin/radiant view out/recon/object-run"

test: sysdeps sysdeps-xvfb $(VENV)/.installed-test
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-full: sysdeps sysdeps-xvfb $(VENV)/.installed-test
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: sysdeps sysdeps-llvm $(VENV)/.installed-bench
	@mkdir -p out/bench && rm -f out/bench/*.jsonl
	$(VENV)/bin/radiant bench rays --out out/bench/rays.jsonl
	$(VENV)/bin/radiant bench render --out out/bench/render.jsonl
	$(VENV)/bin/radiant bench convergence --out out/bench/convergence.jsonl
	$(VENV)/bin/radiant bench viewer --out out/bench/viewer.jsonl
	$(VENV)/bin/radiant bench layered --out out/bench/layered.jsonl
	$(VENV)/bin/radiant bench recon --out out/bench/recon.jsonl
	$(VENV)/bin/radiant bench report out/bench

# The nerfstudio plugin (radiant-sdf) end to end in its own venv (NS_VENV, created when missing: several GB):
# ns-train vs radiant reconstruct at equal iterations on a small room, F@5cm within 10% (scripts/nerfstudio_check.sh).
NS_VENV ?= .venv-nerfstudio
nerfstudio-check:
	NS_VENV=$(NS_VENV) scripts/nerfstudio_check.sh

# Reference images from Mitsuba 3 (scalar_rgb, pinned in the test extra) for tests/render.
refs: $(VENV)/.installed-test
	$(PY) scripts/make_refs.py

# Compile-check every CUDA source (no GPU needed). The .cu files are torch-free by design.
cuda-check:
	@mkdir -p build/cuda-check
	@for f in cuda/gpu/*.cu; do \
	    echo "nvcc -c $$f"; \
	    nvcc -std=c++17 -O2 -Icuda/include -c $$f -o build/cuda-check/$$(basename $$f .cu).o || exit 1; \
	done

clean:
	rm -rf build out .pytest_cache
