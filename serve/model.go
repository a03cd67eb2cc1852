package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// LoadOptions configures how a model is loaded.
type LoadOptions struct {
	// ORTLib is the ONNX Runtime library path (the --ort-lib flag); empty means
	// JARZYN_ORT_LIB, then the project default (see internal/ortlib).
	ORTLib string
	// Device selects the execution provider. The default value is "cpu".
	Device Device
	// CUDAProviderLib is libonnxruntime_providers_cuda.so; empty means
	// JARZYN_ORT_CUDA_EP, then the ONNX Runtime library's folder.
	CUDAProviderLib string
	// Threads is ONNX Runtime's intra-op thread count per Run. The default
	// value (0) is 1: on the CPU the sampler runs GOMAXPROCS/Threads Runs at
	// once, each on its own walkers, which keeps every core busy without
	// ONNX Runtime's per-op synchronisation.
	Threads int
	// Spin lets ONNX Runtime's threads spin between Runs. The default value is
	// false: the sampler's goroutines use the cores between Runs.
	Spin bool
	// NoLatent skips the latent model beside an MLP energy model, so that
	// every run samples in d dimensions. The default value is false.
	NoLatent bool
	// NoFused keeps the file's graph on the CPU instead of the same model
	// with fused activation operators (see Model.Fused). The default value
	// is false.
	NoFused bool
	// Logger receives load-time messages. The default value is slog.Default().
	Logger *slog.Logger
	// SkipVerify loads a model that does not match its seal (model.onnx.sha256,
	// written by jarzyn-export) instead of refusing it. The default value is
	// false; JARZYN_NO_VERIFY=1 has the same effect.
	SkipVerify bool
	// Name and Version label the model in the HTTP API and metrics. The
	// defaults are derived by the caller.
	Name, Version string
}

func (o LoadOptions) threads() int {
	if o.Threads > 0 {
		return o.Threads
	}
	return 1
}

func (o LoadOptions) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// ModelInfo is what a model file says about itself: the jarzyn.* metadata
// that package export writes (models.ONNXMeta, with the TrainingInfo in it),
// where it was read from, and its dimension.
type ModelInfo struct {
	// Path is the file the model was read from.
	Path string `json:"path"`
	models.ONNXMeta
	// Dim is the number of values of one sample, the product of DataShape.
	Dim int `json:"dim"`
	// Meta holds every metadata_props entry verbatim.
	Meta map[string]string `json:"-"`
}

// LogZBase is log Z of the base Gaussian, (d/2)·log(2πσ0²).
func (mi *ModelInfo) LogZBase() float64 {
	return 0.5 * float64(mi.Dim) * math.Log(2*math.Pi*mi.BaseStd*mi.BaseStd)
}

// Model is one loaded energy model: an ONNX Runtime session created once and
// shared by every sampler and request (ONNX Runtime sessions are safe for
// concurrent Run calls), plus a pool of preallocated batches.
type Model struct {
	// Info describes the model.
	Info ModelInfo
	// Name and Version label it (from LoadOptions).
	Name, Version string
	// Device is where it runs (cuda only when the provider loaded).
	Device Device
	// Threads is the intra-op thread count of its session.
	Threads int
	// Lanes is the number of Runs worth running at once on different walkers:
	// GOMAXPROCS/Threads on the CPU, 1 on CUDA.
	Lanes int
	// Fused reports that the session runs the model with jarzyn's fused
	// activation operators (export.BuildFused, internal/ortops) instead of
	// the file's graph: CPU sessions of SiLU MLPs unless LoadOptions.NoFused.
	// The two were checked to agree within 1e-4 on probe points at load.
	Fused bool

	sess     *ort.DynamicAdvancedSession
	gradSess *ort.DynamicAdvancedSession // ∇ₓU alone, when Fused
	latent   *latentModel                // nil unless loaded (LoadModel)

	poolMu    sync.Mutex
	pool      map[poolKey][]*Batch
	poolBytes int
	closed    bool

	batcherMu sync.Mutex
	batcher   *Batcher // started by Batcher on first use, stopped by Close

	// refs counts the holders of a model in a Registry: the registry's own
	// hold and one per Registry.Get not yet released. The last release
	// closes the model. Zero for a model outside a registry.
	refs atomic.Int64
}

// Batcher returns the model's continuous batcher (batcher.go), started with
// cfg on the first call (later calls return the same one), or nil after
// Close.
func (m *Model) Batcher(cfg BatcherConfig) *Batcher {
	m.batcherMu.Lock()
	defer m.batcherMu.Unlock()
	m.poolMu.Lock()
	closed := m.closed
	m.poolMu.Unlock()
	if m.batcher == nil && !closed {
		m.batcher = NewBatcher(m, cfg)
	}
	return m.batcher
}

// maxPoolBytes bounds the tensor memory a model keeps for reuse.
const maxPoolBytes = 256 << 20

// LoadModel reads and checks an exported model and creates its session.
// Every failure (missing, truncated or foreign file, wrong inputs or outputs,
// missing jarzyn metadata) is one error that names the file.
//
// Beside an MLP energy model, the exact latent reduction that jarzyn-export
// writes (models.LatentPath: model.latent.onnx) is loaded too unless
// opt.NoLatent; unweighted sampling then runs in its r dimensions (see
// Sample). A latent file that does not belong to this model (its
// jarzyn.latent_of is another file's SHA-256) or fails to load is skipped
// with a warning: sampling stays correct, in d dimensions.
func LoadModel(path string, opt LoadOptions) (*Model, error) {
	// ONNX Runtime fails hard creating a session with a huge thread count
	if err := HardLimits().CheckThreads(opt.Threads); err != nil {
		return nil, err
	}
	m, data, err := loadModelFile(path, opt, models.GraphEnergy)
	if err != nil {
		return nil, err
	}
	if !opt.NoLatent && m.Info.Family == models.MLP {
		m.latent = loadLatent(path, data, &m.Info, opt)
	}
	return m, nil
}

// loadModelFile loads a model whose jarzyn.graph is graph and returns it
// with the file's bytes.
func loadModelFile(path string, opt LoadOptions, graph string) (*Model, []byte, error) {
	lib, err := ortlib.Init(opt.ORTLib)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, nil, fmt.Errorf("serve: model %s: %v", path, err)
	}
	if len(data) == 0 {
		return nil, nil, fmt.Errorf("serve: model %s: empty file", path)
	}
	if err := verifySeal(path, data, opt); err != nil {
		return nil, nil, err
	}
	ins, outs, err := ort.GetInputOutputInfoWithONNXData(data)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: model %s is not a loadable ONNX model (truncated or damaged?): %v", path, err)
	}
	info, err := readMetadata(path, data, graph)
	if err != nil {
		return nil, nil, err
	}
	if err := checkIO(path, ins, outs, info.DataShape); err != nil {
		return nil, nil, err
	}
	so, dev, err := sessionOptions(opt, lib)
	if err != nil {
		return nil, nil, err
	}
	defer so.Destroy()
	var sess *ort.DynamicAdvancedSession
	create := func() error {
		var err error
		sess, err = ort.NewDynamicAdvancedSessionWithONNXData(data, []string{models.InputX}, []string{models.OutputEnergy, models.OutputGrad}, so)
		return err
	}
	err = onDevice(dev, create)
	if err != nil {
		return nil, nil, fmt.Errorf("serve: model %s: creating the %s session failed: %v", path, dev, err)
	}
	m := &Model{Info: *info, Name: opt.Name, Version: opt.Version, Device: dev, Threads: opt.threads(), Lanes: 1, sess: sess, pool: map[poolKey][]*Batch{}}
	if dev == DeviceCPU {
		m.Lanes = max(1, runtime.GOMAXPROCS(0)/m.Threads)
	}
	// One evaluation at μ0 proves the graph runs and initialises the device
	// (CUDA creates its context on the first Run).
	warm := func() error {
		b, err := m.NewBatch(1, 1)
		if err != nil {
			return err
		}
		defer b.Destroy()
		for k, v := range info.BaseMean {
			b.X[k] = float32(v)
		}
		if err := m.Eval(b, nil); err != nil {
			return err
		}
		if e := b.Energy[0]; math.IsNaN(float64(e)) || math.IsInf(float64(e), 0) {
			return fmt.Errorf("energy at the base mean is %v", e)
		}
		return nil
	}
	err = onDevice(dev, warm)
	if err != nil {
		sess.Destroy()
		return nil, nil, fmt.Errorf("serve: model %s: test evaluation failed: %v", path, err)
	}
	if !opt.NoFused {
		if err := m.fuse(data, opt, lib); err != nil && !errors.Is(err, errNotFusable) {
			opt.logger().Warn("fused operators not used; running the file's graph", "path", path, "reason", err.Error())
		}
	}
	opt.logger().Info("model loaded", "path", path, "name", opt.Name, "version", opt.Version, "family", info.Family,
		"data_shape", info.DataShape, "device", string(dev), "threads", m.Threads, "fused", m.Fused, "ort", lib)
	return m, data, nil
}

// NoVerifyEnv, set to 1, skips the seal check of every model loaded (as
// LoadOptions.SkipVerify does).
const NoVerifyEnv = "JARZYN_NO_VERIFY"

// verifySeal checks data, the content of the model file at path, against
// the seal jarzyn-export writes beside it (path.sha256, see
// models.VerifySeal). A model that does not match its seal, or whose seal
// is unreadable or malformed, is refused: a damaged model must not serve. A
// model without a seal (exported before seals, or copied without it) loads
// with a warning. opt.SkipVerify or JARZYN_NO_VERIFY=1 skips the check.
func verifySeal(path string, data []byte, opt LoadOptions) error {
	if opt.SkipVerify || os.Getenv(NoVerifyEnv) == "1" {
		return nil
	}
	err := models.VerifySeal(path, data)
	if errors.Is(err, models.ErrNoSeal) {
		opt.logger().Warn("model has no seal; loading it unverified (export it again to seal it)", "path", path, "seal", models.SealPath(path))
		return nil
	}
	if err != nil {
		return fmt.Errorf("serve: refusing model %s: %w; export it again, or load it unverified with --no-verify (or %s=1)", path, err, NoVerifyEnv)
	}
	return nil
}

// onDevice runs f, which creates or first runs a session on dev; on CUDA,
// whose libraries install signal handlers of their own, Go's are restored
// afterwards.
func onDevice(dev Device, f func() error) error {
	if dev == DeviceCUDA {
		_, err := withGoSignalHandlers(f)
		return err
	}
	return f()
}

// readMetadata parses the jarzyn.* metadata of an ONNX model.
func readMetadata(path string, data []byte, graph string) (*ModelInfo, error) {
	md, err := ort.GetModelMetadataWithONNXData(data)
	if err != nil {
		return nil, fmt.Errorf("serve: model %s: reading metadata: %v", path, err)
	}
	defer md.Destroy()
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, fmt.Errorf("serve: model %s: reading metadata keys: %v", path, err)
	}
	meta := map[string]string{}
	for _, k := range keys {
		v, _, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, fmt.Errorf("serve: model %s: reading metadata %s: %v", path, k, err)
		}
		meta[k] = v
	}
	var version int64
	if v, err := md.GetVersion(); err == nil {
		version = v
	}
	info := &ModelInfo{Path: path, Meta: meta}
	if err := info.parseMeta(meta, version, graph); err != nil {
		return nil, fmt.Errorf("serve: model %s: %v", path, err)
	}
	return info, nil
}

// parseMeta fills info from metadata_props (models.ParseONNXMeta, which
// names the key in its errors) and the ONNX model_version. The model must
// hold the graph wanted: serve runs energy models, and their latent
// reductions beside them; any other graph is
// refused.
func (info *ModelInfo) parseMeta(meta map[string]string, modelVersion int64, graph string) error {
	m, err := models.ParseONNXMeta(meta, modelVersion)
	if err != nil {
		return err
	}
	switch {
	case m.Graph == graph:
	case m.Graph == models.GraphLatent:
		return fmt.Errorf("bad metadata %s=%q: this file holds the latent reduction of another model; serve that energy model (%s=%s), whose file name is this one's without .latent",
			models.KeyGraph, meta[models.KeyGraph], models.KeyGraph, models.GraphEnergy)
	default:
		return fmt.Errorf("bad metadata %s=%q: want %s", models.KeyGraph, meta[models.KeyGraph], graph)
	}
	info.ONNXMeta = m
	info.Dim = m.Dim()
	return nil
}

// checkIO verifies the model's signature: input x float32 [batch, shape…],
// outputs energy float32 [batch] and grad float32 [batch, shape…].
func checkIO(path string, ins, outs []ort.InputOutputInfo, shape []int) error {
	want := fmt.Sprintf("input x float32 [batch,%s]; outputs energy float32 [batch], grad float32 [batch,%s]", joinInts(shape), joinInts(shape))
	sig := func() string {
		var a, b []string
		for _, i := range ins {
			a = append(a, i.String())
		}
		for _, o := range outs {
			b = append(b, o.String())
		}
		return fmt.Sprintf("inputs [%s], outputs [%s]", strings.Join(a, "; "), strings.Join(b, "; "))
	}
	fail := func(why string) error {
		return fmt.Errorf("serve: model %s: %s; want %s; the file has %s", path, why, want, sig())
	}
	if len(ins) != 1 || ins[0].Name != models.InputX {
		return fail("wrong inputs")
	}
	okTensor := func(io ort.InputOutputInfo, rank int, tail []int) bool {
		if io.OrtValueType != ort.ONNXTypeTensor || io.DataType != ort.TensorElementDataTypeFloat || len(io.Dimensions) != rank {
			return false
		}
		for i, s := range tail {
			if d := io.Dimensions[i+1]; d > 0 && d != int64(s) {
				return false
			}
		}
		return true
	}
	if !okTensor(ins[0], 1+len(shape), shape) {
		return fail("input x has the wrong type or shape")
	}
	found := map[string]bool{}
	for _, o := range outs {
		switch o.Name {
		case models.OutputEnergy:
			if !okTensor(o, 1, nil) {
				return fail("output energy has the wrong type or shape")
			}
		case models.OutputGrad:
			if !okTensor(o, 1+len(shape), shape) {
				return fail("output grad has the wrong type or shape")
			}
		}
		found[o.Name] = true
	}
	if !found[models.OutputEnergy] || !found[models.OutputGrad] {
		return fail("missing outputs")
	}
	return nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// DefaultRunBatch is the default number of walkers per ONNX Runtime Run on
// the CPU. Measured on the 2-core CPU machine (MLP d=2 H=128 and d=784
// H=256, 4096 walkers, one single-threaded Run per core), parts of 1024 were
// the fastest: a part's activations stay in cache.
const DefaultRunBatch = 1024

// Batch holds the preallocated tensors for N walkers: positions X
// [N, shape…], Energy [N] and Grad [N, shape…], each one contiguous slice.
// The batch is cut into parts of at most RunBatch walkers; each part has
// ONNX Runtime tensors that alias its rows of X, Energy and Grad, so writing
// X and evaluating needs no copies.
type Batch struct {
	N, RunBatch     int
	X, Energy, Grad []float32
	parts           []batchPart
}

// batchPart is walkers [lo, hi) of a batch and its tensors.
type batchPart struct {
	lo, hi          int
	inputs, outputs []ort.Value
}

// partSize is the walkers per part of a batch of n for a requested run batch
// (0: DefaultRunBatch): a multiple of smc.ChunkWalkers, at most n.
func partSize(n, runBatch int) int {
	if runBatch <= 0 {
		runBatch = DefaultRunBatch
	}
	runBatch = (runBatch + smc.ChunkWalkers - 1) / smc.ChunkWalkers * smc.ChunkWalkers
	return min(runBatch, n)
}

// NewBatch allocates tensors for n walkers evaluated in parts of at most
// runBatch walkers (0: DefaultRunBatch; ≥ n: one part), rounded up to a
// multiple of 64 walkers.
func (m *Model) NewBatch(n, runBatch int) (*Batch, error) {
	if n <= 0 {
		return nil, fmt.Errorf("serve: batch size must be > 0, got %d", n)
	}
	runBatch = partSize(n, runBatch)
	d := m.Info.Dim
	b := &Batch{N: n, RunBatch: runBatch, X: make([]float32, n*d), Energy: make([]float32, n), Grad: make([]float32, n*d)}
	for lo := 0; lo < n; lo += runBatch {
		p, err := m.partTensors(b, lo, min(n, lo+runBatch))
		if err != nil {
			b.Destroy()
			return nil, err
		}
		b.parts = append(b.parts, *p)
	}
	return b, nil
}

// partTensors returns ONNX Runtime tensors over walkers [lo, hi) of b's X,
// Energy and Grad.
func (m *Model) partTensors(b *Batch, lo, hi int) (*batchPart, error) {
	d := m.Info.Dim
	shape := []int64{int64(hi - lo)}
	for _, s := range m.Info.DataShape {
		shape = append(shape, int64(s))
	}
	x, err := ort.NewTensor(ort.NewShape(shape...), b.X[lo*d:hi*d])
	if err != nil {
		return nil, fmt.Errorf("serve: allocating x [%d,%s]: %w", hi-lo, joinInts(m.Info.DataShape), err)
	}
	e, err := ort.NewTensor(ort.NewShape(int64(hi-lo)), b.Energy[lo:hi])
	if err != nil {
		x.Destroy()
		return nil, fmt.Errorf("serve: allocating energy [%d]: %w", hi-lo, err)
	}
	g, err := ort.NewTensor(ort.NewShape(shape...), b.Grad[lo*d:hi*d])
	if err != nil {
		x.Destroy()
		e.Destroy()
		return nil, fmt.Errorf("serve: allocating grad: %w", err)
	}
	return &batchPart{lo: lo, hi: hi, inputs: []ort.Value{x}, outputs: []ort.Value{e, g}}, nil
}

// Destroy frees the batch's tensors.
func (b *Batch) Destroy() {
	for _, p := range b.parts {
		for _, v := range append(p.inputs, p.outputs...) {
			v.Destroy()
		}
	}
	b.parts = nil
}

func (b *Batch) bytes() int { return 4 * (len(b.X) + len(b.Energy) + len(b.Grad)) }

// Eval runs the model on the whole batch: Energy ← U(X), Grad ← ∇ₓU(X).
// Up to Lanes parts run at once. ro may be nil; a terminated RunOptions
// aborts the Runs.
func (m *Model) Eval(b *Batch, ro *ort.RunOptions) error {
	return smc.ForErr(m.Lanes, len(b.parts), func(lo, hi int) error {
		for j := lo; j < hi; j++ {
			if err := m.evalPart(b, j, ro); err != nil {
				return err
			}
		}
		return nil
	})
}

// runUnder calls run with ONNX Runtime run options that terminate its Runs
// when ctx ends. It returns ctx's error without calling run when ctx has
// already ended or its deadline has passed (a context reports an expired
// deadline only once its timer has fired), and ctx's error instead of run's
// when run fails after ctx ended (a terminated Run); a run that completes is
// kept even if ctx ends just after.
func runUnder(ctx context.Context, run func(*ort.RunOptions) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	ro, err := ort.NewRunOptions()
	if err != nil {
		return fmt.Errorf("serve: creating run options: %w", err)
	}
	// The callback may still be running when runUnder returns, so it and
	// Destroy exclude each other.
	var mu sync.Mutex
	live := true
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if live {
			ro.Terminate()
		}
	})
	defer func() {
		stop()
		mu.Lock()
		live = false
		ro.Destroy()
		mu.Unlock()
	}()
	if err := run(ro); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// evalPart runs the model on part j of the batch.
func (m *Model) evalPart(b *Batch, j int, ro *ort.RunOptions) error {
	p := &b.parts[j]
	if err := m.sess.RunWithOptions(p.inputs, p.outputs, ro); err != nil {
		return fmt.Errorf("serve: evaluating walkers %d..%d: %w", p.lo, p.hi-1, err)
	}
	return nil
}

// evalGradPart sets the gradient of part j of the batch for a step that
// reads nothing else: with a gradient-only session the part's Energy is left
// as it was, without one it is set too.
func (m *Model) evalGradPart(b *Batch, j int, ro *ort.RunOptions) error {
	if m.gradSess == nil {
		return m.evalPart(b, j, ro)
	}
	p := &b.parts[j]
	if err := m.gradSess.RunWithOptions(p.inputs, p.outputs[1:], ro); err != nil {
		return fmt.Errorf("serve: evaluating walkers %d..%d: %w", p.lo, p.hi-1, err)
	}
	return nil
}

type poolKey struct{ n, runBatch int }

// getBatch takes a batch from the pool or allocates one.
func (m *Model) getBatch(n, runBatch int) (*Batch, error) {
	k := poolKey{n, partSize(n, runBatch)}
	m.poolMu.Lock()
	if l := m.pool[k]; len(l) > 0 {
		b := l[len(l)-1]
		m.pool[k] = l[:len(l)-1]
		m.poolBytes -= b.bytes()
		m.poolMu.Unlock()
		return b, nil
	}
	m.poolMu.Unlock()
	return m.NewBatch(n, runBatch)
}

// putBatch returns a batch to the pool, or frees it when the pool is full.
func (m *Model) putBatch(b *Batch) {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	if m.closed || m.poolBytes+b.bytes() > maxPoolBytes {
		b.Destroy()
		return
	}
	k := poolKey{b.N, b.RunBatch}
	m.pool[k] = append(m.pool[k], b)
	m.poolBytes += b.bytes()
}

// Close frees the session and pooled tensors. The model must not be in use.
func (m *Model) Close() error {
	m.poolMu.Lock()
	m.closed = true
	m.poolMu.Unlock()
	m.batcherMu.Lock()
	if m.batcher != nil {
		m.batcher.Close()
		m.batcher = nil
	}
	m.batcherMu.Unlock()
	m.poolMu.Lock()
	for _, l := range m.pool {
		for _, b := range l {
			b.Destroy()
		}
	}
	m.pool, m.poolBytes = map[poolKey][]*Batch{}, 0
	m.poolMu.Unlock()
	var errs []error
	if m.latent != nil {
		errs = append(errs, m.latent.close())
		m.latent = nil
	}
	if m.sess != nil {
		errs = append(errs, m.sess.Destroy())
		m.sess = nil
	}
	if m.gradSess != nil {
		errs = append(errs, m.gradSess.Destroy())
		m.gradSess = nil
	}
	return errors.Join(errs...)
}

// adopt gives a registry its hold on a model that is in none.
func (m *Model) adopt() bool { return m.refs.CompareAndSwap(0, 1) }

// retain adds a holder unless the model's last holder has released it.
func (m *Model) retain() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release returns a model that Registry.Get handed out. A model that has
// left its registry (unloaded, replaced or removed from the models folder)
// is closed by the last release.
func (m *Model) Release() { _ = m.drop() }

// drop removes a holder and closes the model when it was the last.
func (m *Model) drop() error {
	switch n := m.refs.Add(-1); {
	case n == 0:
		return m.Close()
	case n < 0:
		panic("serve: Model.Release without a matching Registry.Get")
	}
	return nil
}

// Describe writes a one-line human summary of the model.
func (m *Model) Describe(w io.Writer) {
	fmt.Fprintf(w, "%s: family %s, data shape %v, base %s, h %g, device %s\n",
		m.Info.Path, m.Info.Family, m.Info.DataShape, describeBase(&m.Info), m.Info.StepSize, m.Device)
}
