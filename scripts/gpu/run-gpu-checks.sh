#!/usr/bin/env bash
# The GPU checks and benchmarks, end to end (docs/GPU.md, "Checking a GPU machine").
#
# On a build machine (the GPU machine itself, or any Linux x86-64 machine; no GPU needed):
#   scripts/gpu/run-gpu-checks.sh prepare     build the binaries, fetch and pin the ONNX Runtime
#                                             GPU libraries, and pack everything into xz parts of at
#                                             most CHUNK_MIB MiB under .gpu-bundle/cNN (small parts are
#                                             easy to copy over slow or size-limited links); prints
#                                             the next steps (also in .gpu-bundle/PLAN)
#   scripts/gpu/run-gpu-checks.sh selftest    reassemble the parts in a scratch folder as the GPU
#                                             machine would and check every sha256
# On the GPU machine, in a checkout of the same commit with .gpu-bundle/cNN copied in:
#   scripts/gpu/run-gpu-checks.sh receive     list the parts that have arrived intact
#   scripts/gpu/run-gpu-checks.sh remote      reassemble, then run every check; results in $OUT
#                                             (default .gpu-out)
#
# Settings (environment): CHUNK_MIB (56), GMM_ITERS (200), SERVE_N (65536), SERVE_STEPS (20),
# BENCH_ITERS (10), STEP_TIMEOUT (240 s per step on the GPU machine), OUT.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUNDLE=$ROOT/.gpu-bundle
STAGE=$BUNDLE/stage
CHUNK_MIB=${CHUNK_MIB:-56}

ORT_GPU_PKG=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9
ORT_GPU_TGZ=com.github.asus4.onnxruntime.linux-x64-gpu-0.4.9.tgz
ORT_GPU_SHA=2b459e0c17f340c92970c10ed86de4f37a3009f93c14053e6ad4334cbb6be412
ORT_CORE_PKG=com.github.asus4.onnxruntime@0.4.9
ORT_CORE_TGZ=com.github.asus4.onnxruntime-0.4.9.tgz
ORT_CORE_SHA=e59788788818fdde1b2e522e766a21ba0f7d8391de55737abf81e32cc801785d
# the libraries inside them (ONNX Runtime 1.29, CUDA 13)
CUDA_EP_SHA=56cf3254b118ad837ccc4ed8f6d1b23504bbf7ef91b34cbc0b289cb7f10b3037
ORT_CORE_LIB_SHA=5715f06d8992ca8eeeddcce43df3a7d38f97d537052126f558e912cb312460ca
ORT_SHARED_SHA=c6a12593396095f5670160e284c35d1700b7708cf3037b7042e2a5200ccae772

log() { echo "gpu-checks: $*" >&2; }
die() { log "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------- build machine

fetch_ort() { # fetch_ort DIR: the pinned npm tarballs, verified, into DIR
	local dir=$1
	mkdir -p "$dir"
	local pkg tgz want
	for spec in "$ORT_GPU_PKG $ORT_GPU_TGZ $ORT_GPU_SHA" "$ORT_CORE_PKG $ORT_CORE_TGZ $ORT_CORE_SHA"; do
		read -r pkg tgz want <<<"$spec"
		if [ ! -f "$dir/$tgz" ] || [ "$(sha "$dir/$tgz")" != "$want" ]; then
			command -v npm >/dev/null || die "npm is required (apt-get install npm)"
			log "npm pack $pkg"
			(cd "$dir" && npm pack --silent "$pkg" >/dev/null) || die "npm pack $pkg failed"
		fi
		[ "$(sha "$dir/$tgz")" = "$want" ] || die "sha256 mismatch for $tgz: got $(sha "$dir/$tgz"), want $want"
	done
}

extract_ort() { # extract_ort NPMDIR ORTDIR PROVIDER_OUT
	local npm=$1 ort=$2 prov=$3 tmp
	tmp=$(mktemp -d)
	tar -xzf "$npm/$ORT_CORE_TGZ" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime.so || die "core library missing in $ORT_CORE_TGZ"
	tar -xzf "$npm/$ORT_GPU_TGZ" -C "$tmp" package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so \
		package/Plugins/Linux/x64/libonnxruntime_providers_shared.so || die "CUDA provider missing in $ORT_GPU_TGZ"
	local x=$tmp/package/Plugins/Linux/x64
	[ "$(sha "$x/libonnxruntime.so")" = "$ORT_CORE_LIB_SHA" ] || die "libonnxruntime.so sha256 changed"
	[ "$(sha "$x/libonnxruntime_providers_shared.so")" = "$ORT_SHARED_SHA" ] || die "libonnxruntime_providers_shared.so sha256 changed"
	[ "$(sha "$x/libonnxruntime_providers_cuda.so")" = "$CUDA_EP_SHA" ] || die "libonnxruntime_providers_cuda.so sha256 changed"
	mkdir -p "$ort"
	install -m 0644 "$x/libonnxruntime.so" "$ort/libonnxruntime.so"
	ln -sf libonnxruntime.so "$ort/libonnxruntime.so.1"
	install -m 0644 "$x/libonnxruntime_providers_shared.so" "$ort/"
	mv "$x/libonnxruntime_providers_cuda.so" "$prov"
	rm -rf "$tmp"
}

build_all() { # build_all STAGE: every binary the checks run, and the benchmark model
	local s=$1 notes=$1/BUILD_NOTES
	mkdir -p "$s/bin" "$s/models"
	: >"$notes"
	# CPU builds without the openblas tag: the GPU machine need not have libopenblas.
	# Symbol tables stripped (-s -w): a third less to copy.
	local ld=(-ldflags=-s\ -w)
	(unset CGO_CFLAGS CGO_LDFLAGS
		go build "${ld[@]}" -o "$s/bin/" ./cmd/jarzyn-train ./cmd/jarzyn-export &&
			go test -c "${ld[@]}" -o "$s/bin/train-cpu.test" ./train) || die "CPU build failed"
	(unset CGO_CFLAGS CGO_LDFLAGS; go build "${ld[@]}" -o "$s/bin/" ./cmd/jarzyn-serve) ||
		echo "jarzyn-serve: build failed on the build machine; serve checks skipped" | tee -a "$notes" >&2
	# CUDA build: needs cuda.h of a CUDA 11 toolkit (Debian: nvidia-cuda-dev) and gcc; cuDNN comes from the shim
	if [ -f /usr/include/cuda.h ] || [ -f /usr/local/cuda/include/cuda.h ]; then
		scripts/gpu/mkstubs.sh "$ROOT/.build/cuda-stubs" >&2 &&
			( # shellcheck source=env.sh
				. scripts/gpu/env.sh
				go build "${ld[@]}" -tags cuda -o "$s/bin/jarzyn-train-cuda" ./cmd/jarzyn-train &&
					go test -c "${ld[@]}" -tags cuda -o "$s/bin/train-cuda.test" ./train
			) || echo "cuda build failed (see the log above)" | tee -a "$notes" >&2
		if command -v nvcc >/dev/null; then
			scripts/gpu/build-ptx.sh "$s/bin/cuda-ptx" >&2 || echo "PTX build failed; the GPU machine's nvcc will make it" | tee -a "$notes" >&2
		else
			echo "no nvcc here: PTX is made on the GPU machine" | tee -a "$notes" >&2
		fi
	else
		echo "no cuda.h: cuda build skipped (install the CUDA 11 toolkit headers, Debian: nvidia-cuda-dev; docs/GPU.md)" | tee -a "$notes" >&2
	fi
	local run
	run=$(mktemp -d)
	"$s/bin/jarzyn-train" --config scripts/gpu/mlp784.yaml --out "$run/mlp784" >/dev/null 2>&1 &&
		"$s/bin/jarzyn-export" --run "$run/mlp784" --out "$s/models/mlp784.onnx" >&2 ||
		echo "mlp784 model: training or export failed; serve benchmark skipped" | tee -a "$notes" >&2
	rm -rf "$run" "$s/bin/jarzyn-export" # export is only needed here
	# gorgonia's kernel sources, for PTX from the GPU machine's own nvcc
	mkdir -p "$s/gorgonia-src"
	cp -r "$(go list -m -f '{{.Dir}}' gorgonia.org/gorgonia)/cuda modules" "$s/gorgonia-src/" && chmod -R u+w "$s/gorgonia-src"
	git rev-parse HEAD >"$s/COMMIT" 2>/dev/null || true
}

# split_into FILE: FILE's parts (≤ CHUNK_MIB) go into the chunk folders .gpu-bundle/cNN
split_into() {
	local f=$1 base
	base=$(basename "$f")
	split -b "${CHUNK_MIB}M" -d -a 2 "$f" "$BUNDLE/parts/$base.part"
	echo "$base $(sha "$f") $(stat -c %s "$f")" >>"$BUNDLE/FILES"
}

pack_chunks() { # group the parts into chunk folders, each ≤ CHUNK_MIB
	local limit n=0 used p sz dir=
	limit=$((CHUNK_MIB * 1024 * 1024))
	used=$limit
	for p in "$BUNDLE"/parts/*; do
		sz=$(stat -c %s "$p")
		if [ $((used + sz)) -gt "$limit" ]; then
			n=$((n + 1)); used=0
			dir=$(printf '%s/c%02d' "$BUNDLE" "$n"); mkdir -p "$dir"
		fi
		mv "$p" "$dir/"; used=$((used + sz))
		echo "$(basename "$dir") $(basename "$p") $(sha "$dir/$(basename "$p")")" >>"$BUNDLE/PARTS"
	done
	rmdir "$BUNDLE/parts"
	# every chunk carries the manifests (a few hundred bytes)
	for dir in "$BUNDLE"/c[0-9][0-9]; do cp "$BUNDLE/FILES" "$BUNDLE/PARTS" "$dir/"; done
}

prepare() {
	command -v xz >/dev/null || die "xz is required (apt-get install xz-utils)"
	rm -rf "$BUNDLE"/c[0-9][0-9] "$BUNDLE/parts" "$BUNDLE/FILES" "$BUNDLE/PARTS" "$STAGE" "$BUNDLE/PLAN" "$BUNDLE/bundle.tar.xz"
	mkdir -p "$STAGE" "$BUNDLE/parts"
	log "building"
	build_all "$STAGE"
	log "fetching ONNX Runtime GPU libraries"
	fetch_ort "$BUNDLE/npm"
	extract_ort "$BUNDLE/npm" "$STAGE/ort" "$BUNDLE/libonnxruntime_providers_cuda.so"
	log "compressing"
	tar -C "$STAGE" -cf - . | xz -T"$(nproc)" -"${XZ_LEVEL:-6}" >"$BUNDLE/bundle.tar.xz" || die "xz failed"
	# the provider never changes (pinned): compressed once (minutes on 2 cores), then reused
	local pxz=$BUNDLE/libonnxruntime_providers_cuda.so.xz
	if [ ! -f "$pxz.ok" ] || [ "$(cat "$pxz.ok")" != "$CUDA_EP_SHA $(sha "$pxz")" ]; then
		xz -T"$(nproc)" -"${XZ_LEVEL:-6}" -c "$BUNDLE/libonnxruntime_providers_cuda.so" >"$pxz" || die "xz failed"
		echo "$CUDA_EP_SHA $(sha "$pxz")" >"$pxz.ok"
	fi
	split_into "$BUNDLE/bundle.tar.xz"
	split_into "$pxz"
	pack_chunks
	rm -f "$BUNDLE/bundle.tar.xz"
	plan | tee "$BUNDLE/PLAN"
}

plan() {
	local chunks=("$BUNDLE"/c[0-9][0-9])
	echo "Parts to copy to the GPU machine (into .gpu-bundle/ of a checkout of the same commit); sizes:"
	du -sh "${chunks[@]}" | sed 's|'"$ROOT"'/||; s/^/  /'
	echo "Then, on the GPU machine, in the repository root:"
	echo "  bash scripts/gpu/run-gpu-checks.sh receive     # optional: which parts arrived intact"
	echo "  bash scripts/gpu/run-gpu-checks.sh remote      # every check; results in \$OUT (default .gpu-out)"
	echo "If parts are missing or damaged, 'remote' lists them in \$OUT/missing.txt: copy those again."
}

# ---------------------------------------------------------------- reassembly (both sides)

# reassemble SRC DEST: check every part listed in SRC/c*/PARTS, join them into
# DEST/<file>, check each file's sha256. Returns 3 and writes DEST/missing.txt
# when parts are missing or damaged.
reassemble() {
	local src=$1 dest=$2 manifest bad=0
	mkdir -p "$dest"
	manifest=$(ls "$src"/c[0-9][0-9]/PARTS 2>/dev/null | head -1)
	[ -n "$manifest" ] || { echo "no chunk has arrived" >"$dest/missing.txt"; return 3; }
	: >"$dest/missing.txt"
	while read -r chunk part want; do
		if [ ! -f "$src/$chunk/$part" ]; then
			echo "$chunk $part missing" >>"$dest/missing.txt"; bad=1
		elif [ "$(sha "$src/$chunk/$part")" != "$want" ]; then
			echo "$chunk $part damaged" >>"$dest/missing.txt"; bad=1
		fi
	done <"$manifest"
	[ $bad = 0 ] || return 3
	rm -f "$dest/missing.txt"
	local file want size
	while read -r file want size; do
		: >"$dest/$file"
		while read -r chunk part _; do
			case $part in "$file".part*) cat "$src/$chunk/$part" >>"$dest/$file" ;; esac
		done < <(sort -k2 "$manifest")
		[ "$(sha "$dest/$file")" = "$want" ] && [ "$(stat -c %s "$dest/$file")" = "$size" ] ||
			{ echo "$file: sha256 or size mismatch after joining" >>"$dest/missing.txt"; return 3; }
	done <"$(dirname "$manifest")/FILES"
}

# unpack DEST: the joined files into the run folder DEST
unpack() {
	local d=$1
	xz -dc "$d/bundle.tar.xz" | tar -C "$d" -xf - || return 1
	xz -dc "$d/libonnxruntime_providers_cuda.so.xz" >"$d/ort/libonnxruntime_providers_cuda.so" || return 1
	[ "$(sha "$d/ort/libonnxruntime_providers_cuda.so")" = "$CUDA_EP_SHA" ] || { log "CUDA provider sha256 mismatch"; return 1; }
	rm -f "$d/bundle.tar.xz" "$d/libonnxruntime_providers_cuda.so.xz"
}

selftest() {
	[ -f "$BUNDLE/PARTS" ] || die "run prepare first"
	local t
	t=$(mktemp -d)
	trap 'rm -rf "$t"' RETURN
	mkdir -p "$t/bundle"
	cp -r "$BUNDLE"/c[0-9][0-9] "$t/bundle/"
	reassemble "$t/bundle" "$t/run" || die "reassembly failed: $(cat "$t/run/missing.txt")"
	unpack "$t/run" || die "unpack failed"
	[ "$(sha "$t/run/ort/libonnxruntime_providers_cuda.so")" = "$(sha "$BUNDLE/libonnxruntime_providers_cuda.so")" ] || die "provider differs"
	(cd "$STAGE" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$t/a"
	(cd "$t/run" && find . -type f ! -name libonnxruntime_providers_cuda.so -print0 | sort -z | xargs -0 sha256sum) >"$t/b"
	diff -q "$t/a" "$t/b" >/dev/null || die "unpacked files differ from the stage"
	# a lost chunk must be reported, not half-used
	rm -rf "$t/bundle/c01" "$t/run2"
	if reassemble "$t/bundle" "$t/run2"; then die "a missing chunk went unnoticed"; fi
	grep -q "c01" "$t/run2/missing.txt" || die "missing.txt does not name c01"
	log "selftest: $(wc -l <"$BUNDLE/PARTS") parts in $(ls -d "$BUNDLE"/c[0-9][0-9] | wc -l) chunks reassemble to the staged files and the pinned CUDA provider; a missing chunk is reported"
}

# ---------------------------------------------------------------- GPU machine

receive() {
	local c
	for c in .gpu-bundle/c[0-9][0-9]; do
		[ -d "$c" ] || continue
		while read -r chunk part want; do
			[ "$chunk" = "$(basename "$c")" ] || continue
			if [ -f "$c/$part" ] && [ "$(sha "$c/$part")" = "$want" ]; then echo "$chunk/$part ok"; else echo "$chunk/$part MISSING"; fi
		done <"$c/PARTS"
	done
	df -h . | tail -1
}

# cudnn_include: the include folder of the pip package nvidia-cudnn, if any
cudnn_include() {
	python3 -c 'import nvidia.cudnn as m, os; print(os.path.join(list(m.__path__)[0], "include"))' 2>/dev/null
}

# nvidia_libs: the pip NVIDIA lib folders (cuBLAS, cuDNN, cuRAND, CUDA runtime) of the machine's Python
nvidia_libs() {
	python3 -c 'import nvidia, os, glob; print(":".join(sorted(d for p in nvidia.__path__ for d in glob.glob(os.path.join(p, "*", "lib")))))' 2>/dev/null
}

step() { # step NAME CMD...: run with a time limit, output to $OUT/NAME.log, status to $OUT/steps.tsv
	local name=$1 t0 rc
	shift
	t0=$(date +%s.%N)
	timeout "${STEP_TIMEOUT:-240}" "$@" >"$OUT/$name.log" 2>&1
	rc=$?
	printf '%s\t%s\t%s\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" >>"$OUT/steps.tsv"
	log "$name: rc=$rc"
	return 0
}

remote() {
	OUT=${OUT:-$ROOT/.gpu-out}
	mkdir -p "$OUT" || die "cannot create OUT=$OUT"
	local R=$ROOT/.gpu-run
	rm -rf "$R"
	if ! reassemble "$BUNDLE" "$R"; then
		cp "$R/missing.txt" "$OUT/missing.txt"; receive >"$OUT/receive.txt"
		die "parts missing: $(tr '\n' ';' <"$R/missing.txt")"
	fi
	unpack "$R" || die "unpack failed"
	printf 'step\trc\tseconds\n' >"$OUT/steps.tsv"
	cp "$R/BUILD_NOTES" "$R/COMMIT" "$OUT/" 2>/dev/null
	local B=$R/bin NV
	NV=$(nvidia_libs)
	export LD_LIBRARY_PATH=$NV${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
	{
		echo "## nvidia-smi"; nvidia-smi 2>&1
		echo "## LD_LIBRARY_PATH"; echo "$LD_LIBRARY_PATH" | tr ':' '\n'
		echo "## nvcc"; nvcc --version 2>&1 | tail -2
		echo "## gcc"; gcc --version 2>&1 | head -1
		echo "## python"; python3 -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1
		echo "## cudnn headers"; ls "$(cudnn_include)" 2>&1 | head
	} >"$OUT/env.txt" 2>&1

	# 1. does the CUDA build load, and does every symbol it names exist (CUDA 13 driver, cuBLAS 13, cuDNN 9)?
	if [ -x "$B/jarzyn-train-cuda" ]; then
		step ldd ldd "$B/jarzyn-train-cuda"
		step bind-now env LD_BIND_NOW=1 "$B/jarzyn-train-cuda" --print-config --config configs/gmm50d.yaml
		# PTX from this machine's nvcc for this GPU (else the one carried, compute_70 from CUDA 11.8)
		if command -v nvcc >/dev/null; then
			local cc
			cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
			step ptx-native env GORGONIA_DIR="$R/gorgonia-src" scripts/gpu/build-ptx.sh "$R/ptx-native" "compute_${cc:-90}"
		fi
		export JARZYN_CUDA_PTX=$B/cuda-ptx
		if [ ! -f "$B/cuda-ptx/elembinop.ptx" ] && [ -f "$R/ptx-native/elembinop.ptx" ]; then
			export JARZYN_CUDA_PTX=$R/ptx-native
		fi
		echo "JARZYN_CUDA_PTX=$JARZYN_CUDA_PTX" >>"$OUT/env.txt"
		# 2. cuDNN declarations against the real headers (when gcc and the headers are here)
		step cudnn-abi scripts/gpu/cudnn-abi-check.sh "$(cudnn_include)"
		# 3. parity: one iteration GPU vs CPU
		step parity env JARZYN_CPU_TRAIN="$B/jarzyn-train" JARZYN_PARITY_OUT="$OUT/parity.json" \
			"$B/train-cuda.test" -test.run 'TestGPUParity' -test.v
		# 4. gmm50d on cuda, and the CPU binary for the same iterations
		step gmm50d-cuda "$B/jarzyn-train-cuda" --config configs/gmm50d.yaml --set device=cuda \
			--set iterations="${GMM_ITERS:-200}" --out "$OUT/gmm50d-cuda"
		step gmm50d-cpu "$B/jarzyn-train" --config configs/gmm50d.yaml --set iterations="${GMM_ITERS:-200}" --out "$OUT/gmm50d-cpu"
		# 5. training-iteration benchmarks (MLP d=784, H=256, N=4096; gmm50d)
		step bench-train-cuda "$B/train-cuda.test" -test.run '^$' -test.bench 'BenchmarkTrainIteration/(mlp_d784_H256|gmm50d)$' \
			-test.benchtime "${BENCH_ITERS:-10}x"
	else
		echo "no CUDA build was carried (see BUILD_NOTES)" >"$OUT/cuda-skipped.txt"
	fi
	step bench-train-cpu "$B/train-cpu.test" -test.run '^$' -test.bench 'BenchmarkTrainIteration/(mlp_d784_H256|gmm50d)$' \
		-test.benchtime "${BENCH_ITERS:-10}x" -test.cpu "$(nproc)"
	# 6. sampling: jarzyn-serve --device cuda (plugin EP) against the CPU provider, d=784 H=256
	if [ -x "$B/jarzyn-serve" ] && [ -f "$R/models/mlp784.onnx" ]; then
		local n=${SERVE_N:-65536} k=${SERVE_STEPS:-20}
		for dev in cuda cpu; do
			step "serve-$dev" "$B/jarzyn-serve" sample --model "$R/models/mlp784.onnx" --device "$dev" \
				--ort-lib "$R/ort/libonnxruntime.so" --cuda-ep-lib "$R/ort/libonnxruntime_providers_cuda.so" \
				--n "$n" --steps "$k" --seed 1 --quiet --format npy --out "$R/samples-$dev.npy" -v
		done
	fi
	# 7. PyTorch references on the same GPU (bench/, --device where the script has it)
	step torch-ula python3 bench/torch_ula.py --device cuda --n "${SERVE_N:-65536}" --d 784 --h 256 --min-time 2
	if python3 bench/torch_train_iter.py --help 2>/dev/null | grep -q -- '--device'; then
		step torch-train-iter python3 bench/torch_train_iter.py --device cuda --cases mlp_d784_H256 --min-time 2
	else
		step torch-train-iter-cpu python3 bench/torch_train_iter.py --cases mlp_d784_H256 --min-time 2
		echo "bench/torch_train_iter.py has no --device flag: ran on the CPU" >>"$OUT/steps-notes.txt"
	fi
	summarize >"$OUT/summary.md"
	cat "$OUT/summary.md"
}

summarize() {
	echo "# GPU checks ($(cat "$OUT/COMMIT" 2>/dev/null))"
	echo; echo '| step | exit | seconds |'; echo '|---|---|---|'
	tail -n +2 "$OUT/steps.tsv" | awk -F'\t' '{printf "| %s | %s | %s |\n", $1, $2, $3}'
	echo; echo '## parity'; grep -E '^(---|===|ok|FAIL|PASS)|relative max|differs' "$OUT/parity.log" 2>/dev/null | head -60
	echo; echo '## benchmarks'; grep -hE '^Benchmark' "$OUT"/bench-train-*.log 2>/dev/null
	echo; echo '## sampling'; grep -h walker_steps_per_second "$OUT"/serve-*.log 2>/dev/null
	echo; echo '## first lines of failed steps'
	tail -n +2 "$OUT/steps.tsv" | awk -F'\t' '$2 != 0 {print $1}' | while read -r s; do echo "### $s"; tail -15 "$OUT/$s.log"; done
}

case ${1:-} in
prepare) prepare ;;
selftest) selftest ;;
plan) plan ;;
receive) receive ;;
remote) remote ;;
*) sed -n '2,18p' "$0"; exit 2 ;;
esac
