package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/models"
)

// A small LeNet-like image classifier, trained with softmax cross-entropy
// and Adam on the project's own convolution and activation ops; it labels
// images (e.g. EBM samples of MNIST digits) with one of a few classes.
//
// The net on a C×H×W input (NCHW rows, as datasets.Images holds them):
//
//	conv C→16 k5 s2 p2, SiLU; conv 16→32 k3 s2 p1, SiLU; flatten;
//	linear → Hidden, SiLU; linear → len(Classes) logits.
//
// On 1×28×28 the convolutions give 16×14×14 and 32×7×7 (flatten 1568).

// ClassifierConfig sets the training of a classifier; zero fields take the
// defaults noted.
type ClassifierConfig struct {
	Epochs    int     // passes over the training images (default 8)
	BatchSize int     // images per Adam step (default 128); the last partial batch of an epoch is dropped
	LR        float64 // Adam's learning rate (default 1e-3; β = 0.9, 0.999, ε = 1e-8)
	Hidden    int     // width of the hidden linear layer (default 64)
	Seed      uint64  // initialisation and shuffling; equal seeds give equal classifiers
	DType     string  // "float32" (default) or "float64"
	// Progress, when set, is called after every epoch with its mean loss.
	Progress func(epoch int, meanLoss float64)
}

func (c ClassifierConfig) withDefaults() (ClassifierConfig, error) {
	if c.Epochs == 0 {
		c.Epochs = 8
	}
	if c.BatchSize == 0 {
		c.BatchSize = 128
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Hidden == 0 {
		c.Hidden = 64
	}
	if c.DType == "" {
		c.DType = "float32"
	}
	if c.Epochs < 1 || c.BatchSize < 1 || c.LR < 0 || c.Hidden < 1 {
		return c, fmt.Errorf("train: classifier needs epochs, batch size and hidden width ≥ 1 and lr > 0, got %+v", c)
	}
	if c.DType != "float32" && c.DType != "float64" {
		return c, fmt.Errorf("train: classifier dtype must be float32 or float64, got %q", c.DType)
	}
	return c, nil
}

// Classifier is a trained classifier. Params holds its tensors in float64,
// in the order conv1 filters [16, C·5·5], conv1 bias [16], conv2 filters
// [32, 16·3·3], conv2 bias [32], W1 [flatten, Hidden], b1 [Hidden],
// W2 [Hidden, K], b2 [K] (filters in (out, in, kh, kw) order, linear
// weights input-major: y = x·W + b).
type Classifier struct {
	Classes []int // class labels; output k of Predict is Classes[k]
	C, H, W int   // input shape
	Hidden  int
	Params  [][]float64
	// TestAccuracy is the share of held-out images of Classes that Label
	// gets right (Accuracy on a test split), 0 when unknown; SaveClassifier
	// keeps it in the file.
	TestAccuracy float64

	mu   sync.Mutex
	pred *clsNet[float32] // inference graph, built on first use
}

// clsArch is the classifier's geometry.
type clsArch struct {
	in     [3]int
	hidden int
	k      int
}

func (a clsArch) geoms() (convGeom, convGeom) {
	l := models.ClassifierConvs()
	g1 := newConvGeom(a.in, l[0])
	g2 := newConvGeom([3]int{g1.Out, g1.Ho, g1.Wo}, l[1])
	return g1, g2
}

func (a clsArch) dim() int { return a.in[0] * a.in[1] * a.in[2] }

// shapes are the graph shapes of the parameters (see Classifier.Params).
func (a clsArch) shapes() [][]int {
	g1, g2 := a.geoms()
	flat := g2.outSize()
	return [][]int{
		{g1.Out, g1.ckk()}, {g1.Out},
		{g2.Out, g2.ckk()}, {g2.Out},
		{flat, a.hidden}, {1, a.hidden},
		{a.hidden, a.k}, {1, a.k},
	}
}

// fanIn is the number of inputs of each parameter tensor's unit.
func (a clsArch) fanIn() []int {
	g1, g2 := a.geoms()
	return []int{g1.ckk(), g1.ckk(), g2.ckk(), g2.ckk(), g2.outSize(), g2.outSize(), a.hidden, a.hidden}
}

// initParams draws every tensor uniformly in ±1/√fanIn (PyTorch's default
// for Conv2d and Linear).
func (a clsArch) initParams(seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 0x6a61727a796e636c))
	fan := a.fanIn()
	var out [][]float64
	for k, s := range a.shapes() {
		d := make([]float64, prodInts(s))
		bound := 1 / math.Sqrt(float64(fan[k]))
		for i := range d {
			d[i] = (2*rng.Float64() - 1) * bound
		}
		out = append(out, d)
	}
	return out
}

// clsNet is one classifier graph for a fixed batch of n images: logits,
// and with train the mean cross-entropy against the one-hot targets Y and
// its gradient with respect to the parameters. The parameter nodes are
// backed by data, so steps taken on data in place are seen by the graph.
type clsNet[T Float] struct {
	n      int
	X, Y   []T // n×dim images, n×K one-hot targets
	logits *G.Node
	loss   *G.Node
	grads  G.Nodes
	vm     G.VM
}

func newClsNet[T Float](a clsArch, data [][]T, n int, train bool) (*clsNet[T], error) {
	g := G.NewGraph()
	dt := dtypeOf[T]()
	var params G.Nodes
	for k, s := range a.shapes() {
		t := tensor.New(tensor.WithShape(s...), tensor.WithBacking(data[k]))
		name := fmt.Sprintf("cls_p%d", k)
		if len(s) == 2 {
			params = append(params, G.NewMatrix(g, dt, G.WithShape(s...), G.WithName(name), G.WithValue(t)))
		} else {
			params = append(params, G.NewVector(g, dt, G.WithShape(s...), G.WithName(name), G.WithValue(t)))
		}
	}
	x, xs := inputMatrix[T](g, "x", n, a.dim(), nil)
	var err error
	must := func(nd *G.Node, e error) *G.Node {
		if e != nil && err == nil {
			err = e
		}
		return nd
	}
	silu := func(h *G.Node) *G.Node { return must(applyActivationSlope(models.SiLU, 0, h)) }
	g1, g2 := a.geoms()
	h := silu(must(applyConv[T](g1, x, params[0], params[1])))
	h = silu(must(applyConv[T](g2, h, params[2], params[3])))
	h = silu(must(G.BroadcastAdd(must(G.Mul(h, params[4])), params[5], nil, []byte{0})))
	logits := must(G.BroadcastAdd(must(G.Mul(h, params[6])), params[7], nil, []byte{0}))
	if err != nil {
		return nil, fmt.Errorf("train: building the classifier: %w", err)
	}
	net := &clsNet[T]{n: n, X: xs, logits: logits}
	if !train {
		net.vm = G.NewTapeMachine(g)
		return net, nil
	}
	// log-softmax with the row maximum subtracted, then the mean of −log p
	// of the target class
	y, ys := inputMatrix[T](g, "y", n, a.k, nil)
	mx := must(G.Max(logits, 1))
	sh := must(G.BroadcastSub(logits, must(G.Reshape(mx, tensor.Shape{n, 1})), nil, []byte{1}))
	lse := must(G.Log(must(G.Sum(must(G.Exp(sh)), 1))))
	logp := must(G.BroadcastSub(sh, must(G.Reshape(lse, tensor.Shape{n, 1})), nil, []byte{1}))
	loss := must(G.Neg(must(G.Mean(must(G.Sum(must(G.HadamardProd(logp, y)), 1))))))
	if err != nil {
		return nil, fmt.Errorf("train: building the classifier loss: %w", err)
	}
	grads, err := G.Grad(loss, params...)
	if err != nil {
		return nil, fmt.Errorf("train: differentiating the classifier loss: %w", err)
	}
	// without the input gradient of the first convolution, which nothing reads
	prog := g.SubgraphRoots(append(G.Nodes{loss, logits}, grads...)...)
	net.Y, net.loss, net.grads, net.vm = ys, loss, grads, G.NewTapeMachine(prog)
	return net, nil
}

// run evaluates the graph; with grads non-nil it copies the parameter
// gradients there and returns the loss.
func (c *clsNet[T]) run(grads [][]T) (float64, error) {
	c.vm.Reset()
	if err := c.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("train: evaluating the classifier: %w", err)
	}
	if c.loss == nil {
		return 0, nil
	}
	for k, gn := range c.grads {
		copy(grads[k], valueData[T](gn))
	}
	switch v := c.loss.Value().Data().(type) {
	case T:
		return float64(v), nil
	case []T:
		return float64(v[0]), nil
	}
	return 0, fmt.Errorf("train: classifier loss has value %T", c.loss.Value().Data())
}

// classIndex maps labels to output indices.
func classIndex(classes []int) (map[int]int, error) {
	idx := map[int]int{}
	for k, c := range classes {
		if _, dup := idx[c]; dup {
			return nil, fmt.Errorf("train: classifier class %d listed twice", c)
		}
		idx[c] = k
	}
	if len(classes) < 2 {
		return nil, fmt.Errorf("train: a classifier needs at least two classes, got %v", classes)
	}
	return idx, nil
}

// TrainClassifier trains a classifier of images labelled with classes on
// every image of those classes (the others are ignored). It is
// deterministic for a given configuration, data set and seed.
func TrainClassifier(ctx context.Context, images *datasets.Images, classes []int, cfg ClassifierConfig) (*Classifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	idx, err := classIndex(classes)
	if err != nil {
		return nil, err
	}
	if images == nil || images.C < 1 || images.H < 1 || images.W < 1 || len(images.Pixels) != images.N*images.Dim() || len(images.Labels) != images.N {
		return nil, fmt.Errorf("train: classifier needs a consistent image set")
	}
	var sel []int
	for i, l := range images.Labels {
		if _, ok := idx[l]; ok {
			sel = append(sel, i)
		}
	}
	if len(sel) < cfg.BatchSize {
		return nil, fmt.Errorf("train: classifier has %d images of classes %v, fewer than a batch of %d", len(sel), classes, cfg.BatchSize)
	}
	a := clsArch{in: [3]int{images.C, images.H, images.W}, hidden: cfg.Hidden, k: len(classes)}
	if g1, g2 := a.geoms(); g1.Ho < 1 || g1.Wo < 1 || g2.Ho < 1 || g2.Wo < 1 {
		return nil, fmt.Errorf("train: classifier input %v is too small", a.in)
	}
	cl := &Classifier{Classes: append([]int(nil), classes...), C: images.C, H: images.H, W: images.W, Hidden: cfg.Hidden}
	switch cfg.DType {
	case "float64":
		cl.Params, err = trainClassifier[float64](ctx, a, images, sel, idx, cfg)
	default:
		cl.Params, err = trainClassifier[float32](ctx, a, images, sel, idx, cfg)
	}
	if err != nil {
		return nil, err
	}
	return cl, nil
}

func trainClassifier[T Float](ctx context.Context, a clsArch, images *datasets.Images, sel []int, idx map[int]int, cfg ClassifierConfig) ([][]float64, error) {
	init := a.initParams(cfg.Seed)
	data := make([][]T, len(init))
	grads := make([][]T, len(init))
	opt := &optimizer[T]{adam: true, beta1: 0.9, beta2: 0.999, eps: 1e-8}
	for k, p := range init {
		data[k] = make([]T, len(p))
		for i, v := range p {
			data[k][i] = T(v)
		}
		grads[k] = make([]T, len(p))
		opt.lr = append(opt.lr, cfg.LR)
		opt.frozen = append(opt.frozen, nil)
		opt.m = append(opt.m, make([]float64, len(p)))
		opt.v = append(opt.v, make([]float64, len(p)))
	}
	b := cfg.BatchSize
	net, err := newClsNet[T](a, data, b, true)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x73687566666c65))
	d := a.dim()
	for ep := 0; ep < cfg.Epochs; ep++ {
		order := append([]int(nil), sel...)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		sum, steps := 0.0, 0
		for s := 0; s+b <= len(order); s += b {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			clear(net.Y)
			for r, i := range order[s : s+b] {
				row := net.X[r*d : (r+1)*d]
				for j, v := range images.Image(i) {
					row[j] = T(v)
				}
				net.Y[r*a.k+idx[images.Labels[i]]] = 1
			}
			loss, err := net.run(grads)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				return nil, fmt.Errorf("train: classifier loss is %v at epoch %d", loss, ep)
			}
			opt.step(data, grads, 1)
			sum += loss
			steps++
		}
		if cfg.Progress != nil {
			cfg.Progress(ep, sum/float64(steps))
		}
	}
	out := make([][]float64, len(data))
	for k, p := range data {
		out[k] = make([]float64, len(p))
		for i, v := range p {
			out[k][i] = float64(v)
		}
	}
	return out, nil
}

// clsPredictBatch is the batch of the inference graph.
const clsPredictBatch = 256

func (c *Classifier) arch() clsArch {
	return clsArch{in: [3]int{c.C, c.H, c.W}, hidden: c.Hidden, k: len(c.Classes)}
}

// Predict returns the class probabilities (softmax of the logits) of the n
// images in x (n×C·H·W, pixels in [−1, 1] as datasets.Images holds them),
// n×len(Classes) row-major. It runs in float32 and is safe for concurrent
// use (calls are serialised).
func (c *Classifier) Predict(x []float64, n int) ([]float64, error) {
	a := c.arch()
	d := a.dim()
	if n < 0 || len(x) != n*d {
		return nil, fmt.Errorf("train: Predict got %d values for %d images of %d", len(x), n, d)
	}
	shapes := a.shapes()
	if len(c.Params) != len(shapes) {
		return nil, fmt.Errorf("train: classifier has %d parameter tensors, want %d", len(c.Params), len(shapes))
	}
	for k, s := range shapes {
		if len(c.Params[k]) != prodInts(s) {
			return nil, fmt.Errorf("train: classifier parameter %d has %d values, want %d", k, len(c.Params[k]), prodInts(s))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pred == nil {
		data := make([][]float32, len(c.Params))
		for k, p := range c.Params {
			data[k] = make([]float32, len(p))
			for i, v := range p {
				data[k][i] = float32(v)
			}
		}
		net, err := newClsNet[float32](a, data, clsPredictBatch, false)
		if err != nil {
			return nil, err
		}
		c.pred = net
	}
	net, k := c.pred, a.k
	probs := make([]float64, n*k)
	for s := 0; s < n; s += clsPredictBatch {
		m := min(clsPredictBatch, n-s)
		for i, v := range x[s*d : (s+m)*d] {
			net.X[i] = float32(v)
		}
		clear(net.X[m*d:])
		if _, err := net.run(nil); err != nil {
			return nil, err
		}
		lg := valueData[float32](net.logits)
		for r := 0; r < m; r++ {
			row, out := lg[r*k:(r+1)*k], probs[(s+r)*k:(s+r+1)*k]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			z := 0.0
			for j, v := range row {
				out[j] = math.Exp(float64(v) - mx)
				z += out[j]
			}
			for j := range out {
				out[j] /= z
			}
		}
	}
	return probs, nil
}

// Label returns, for the n images in x, the class (from Classes) of highest
// probability and that probability.
func (c *Classifier) Label(x []float64, n int) (labels []int, conf []float64, err error) {
	probs, err := c.Predict(x, n)
	if err != nil {
		return nil, nil, err
	}
	k := len(c.Classes)
	labels, conf = make([]int, n), make([]float64, n)
	for i := 0; i < n; i++ {
		best := 0
		for j := 1; j < k; j++ {
			if probs[i*k+j] > probs[i*k+best] {
				best = j
			}
		}
		labels[i], conf[i] = c.Classes[best], probs[i*k+best]
	}
	return labels, conf, nil
}

// Accuracy is the fraction of the images of images whose label is one of
// Classes that Label gets right (images of other classes are ignored); it
// is an error when there are none.
func (c *Classifier) Accuracy(images *datasets.Images) (float64, error) {
	idx, err := classIndex(c.Classes)
	if err != nil {
		return 0, err
	}
	if images.C != c.C || images.H != c.H || images.W != c.W {
		return 0, fmt.Errorf("train: classifier takes %d×%d×%d images, got %d×%d×%d", c.C, c.H, c.W, images.C, images.H, images.W)
	}
	var x []float64
	var want []int
	for i, l := range images.Labels {
		if _, ok := idx[l]; ok {
			x = append(x, images.Image(i)...)
			want = append(want, l)
		}
	}
	if len(want) == 0 {
		return 0, fmt.Errorf("train: no images of classes %v to score", c.Classes)
	}
	got, _, err := c.Label(x, len(want))
	if err != nil {
		return 0, err
	}
	right := 0
	for i, l := range got {
		if l == want[i] {
			right++
		}
	}
	return float64(right) / float64(len(want)), nil
}
