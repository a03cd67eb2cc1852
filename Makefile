# jarzyn: train → export → serve for energy-based models.
#   make demo   train the 2-D demo, export it to ONNX, sample it, draw a PNG
#   make test   run the whole test suite
# Both run `make setup` first (OpenBLAS and the ONNX Runtime library).

GO        ?= go
TAGS      ?= openblas
BUILDFLAGS := -tags=$(TAGS)
BIN       := bin
DEMO_DIR  ?= runs/demo
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup build test demo bench clean build-cuda

setup: .deps/onnxruntime/libonnxruntime.so.1 .deps/openblas.ok
	$(GO) mod download

.deps/onnxruntime/libonnxruntime.so.1:
	scripts/install-ort.sh

# OpenBLAS is the fast BLAS path (TAGS=openblas); `make TAGS= test` builds pure Go.
.deps/openblas.ok:
	@mkdir -p .deps
	@if [ -n "$(TAGS)" ] && ! ldconfig -p 2>/dev/null | grep -q libopenblas.so; then \
	  echo "setup: installing libopenblas-dev (Debian)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libopenblas-dev >/dev/null; \
	fi
	@touch $@

build: setup
	$(GO) build $(BUILDFLAGS) -o $(BIN)/ ./cmd/jarzyn-train ./cmd/jarzyn-export
	$(GO) build -o $(BIN)/ ./cmd/jarzyn-serve

test: setup
	$(GO) vet $(BUILDFLAGS) ./...
	$(GO) test $(BUILDFLAGS) -timeout 15m ./...

demo: build
	rm -rf $(DEMO_DIR)
	$(BIN)/jarzyn-train --config configs/gmm2d.yaml --out $(DEMO_DIR)
	$(BIN)/jarzyn-export --run $(DEMO_DIR) --out $(DEMO_DIR)/model.onnx
	$(BIN)/jarzyn-serve sample --model $(DEMO_DIR)/model.onnx --n 10000 --steps 500 --seed 1 --weighted --format csv --out $(DEMO_DIR)/samples.csv
	$(BIN)/jarzyn-serve sample --model $(DEMO_DIR)/model.onnx --n 10000 --steps 500 --seed 1 --weighted --format png --out $(DEMO_DIR)/samples.png
	@echo "demo: run dir $(DEMO_DIR): summary.json, metrics.csv, plots/*.png, model.onnx, samples.csv, samples.png"

bench: build
	bench/run.sh

clean:
	rm -rf $(BIN) runs/demo

# CUDA build of the trainer (docs/GPU.md): Debian's nvidia-cuda-dev (non-free,
# CUDA 11.8 headers: the driver API is forward compatible) and nvcc for
# gorgonia's PTX kernels; cuDNN 9 comes from internal/cudashim, cuBLAS 13 and
# cuDNN 9 from link-time stubs, the real libraries at run time.
CUDA_BIN ?= $(BIN)/cuda
build-cuda:
	@if [ ! -f /usr/include/cuda.h ] || ! command -v nvcc >/dev/null; then \
	  echo "build-cuda: installing Debian's nvidia-cuda-dev and nvidia-cuda-toolkit (non-free, for this step only)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' | $$SUDO tee /etc/apt/sources.list.d/jarzyn-nonfree.sources >/dev/null; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nvidia-cuda-dev nvidia-cuda-toolkit >/dev/null; \
	  rc=$$?; $$SUDO rm -f /etc/apt/sources.list.d/jarzyn-nonfree.sources; $$SUDO apt-get update -qq; exit $$rc; \
	fi
	scripts/gpu/mkstubs.sh .build/cuda-stubs
	. scripts/gpu/env.sh && $(GO) build -tags cuda -o $(CUDA_BIN)/jarzyn-train ./cmd/jarzyn-train
	scripts/gpu/build-ptx.sh $(CUDA_BIN)/cuda-ptx
	@echo "build-cuda: $(CUDA_BIN)/jarzyn-train and $(CUDA_BIN)/cuda-ptx; run it on a CUDA 13 machine with LD_LIBRARY_PATH at cuDNN 9 and cuBLAS 13 (docs/GPU.md)"
