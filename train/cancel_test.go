package train

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// cancelAt is a context whose Err reports cancellation from its n-th call
// on: a cancellation that arrives at a chosen check of the training loop.
type cancelAt struct {
	context.Context
	calls, n int64
}

func (c *cancelAt) Err() error {
	if atomic.AddInt64(&c.calls, 1) >= c.n {
		return context.Canceled
	}
	return nil
}

func ckptIteration(t *testing.T, dir string) string {
	t.Helper()
	c, err := models.ReadContainer(filepath.Join(dir, CheckpointDir, LatestCkpt))
	if err != nil {
		t.Fatal(err)
	}
	return c.Meta[models.MetaIteration]
}

// TestCancelBetweenULASteps: with several ULA steps per update a
// cancellation is noticed between two steps, not at the next iteration; the
// checkpoint holds the start of the cancelled iteration, and resuming from
// it ends bit for bit where an uninterrupted run ends (also for CD, whose
// walkers go back to the data at the start of the iteration).
func TestCancelBetweenULASteps(t *testing.T) {
	mlp := gmmTestConfig()
	mlp.Model.Spec = models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{8}, Activation: models.SiLU, BaseStd: 3}
	mlp.Optimizer = DefaultConfig().Optimizer
	mlp.Walkers.Monitor = 16
	cd := tinyConfig(CD)
	cd.CD.ResetEvery = 1
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"jarzynski mlp", mlp}, {"cd gmm", cd}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Data.N, cfg.Walkers.N, cfg.Data.Batch = 64, 32, 0
			cfg.Walkers.ULASteps = 3
			cfg.Iterations = 4
			cfg.Log.Every, cfg.Log.EvalEvery, cfg.Log.CheckpointEvery, cfg.Log.Grid, cfg.Log.Plots = 1, 1000, 1000, 20, false
			dirA, dirB := t.TempDir(), t.TempDir()
			if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			// checks: iteration 0 start, steps 1 and 2, iteration 1 start,
			// step 1, step 2 ← cancelled here, inside iteration 1
			ctx := &cancelAt{Context: context.Background(), n: 6}
			if _, err := Run(ctx, Options{Config: cfg, OutDir: dirB, Logger: quiet}); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("cancelled run returned %v, want ErrInterrupted", err)
			}
			if it := ckptIteration(t, dirB); it != "1" {
				t.Fatalf("checkpoint at iteration %s, want 1 (the start of the cancelled iteration)", it)
			}
			if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			names := []string{"walkers", "energies", "grads", "log_weights", "param/" + cfg.Model.ParamShapes()[0].Name, "opt/v/0", "rng"}
			a, _ := models.ReadContainer(filepath.Join(dirA, CheckpointDir, LatestCkpt))
			b, _ := models.ReadContainer(filepath.Join(dirB, CheckpointDir, LatestCkpt))
			for _, n := range names {
				x, _ := a.Bytes(n)
				y, _ := b.Bytes(n)
				if string(x) != string(y) || len(x) == 0 {
					t.Errorf("section %s differs between the uninterrupted and the resumed run", n)
				}
			}
		})
	}
}

// TestCancelLongULAStepsPromptly: walkers.ula_steps at its limit makes one
// iteration take long; SIGTERM (a cancelled context) is honoured within a
// bounded time, with a checkpoint of iteration 0.
func TestCancelLongULAStepsPromptly(t *testing.T) {
	cfg := tinyConfig(Jarzynski)
	cfg.Data.N, cfg.Walkers.N = 16, 8
	cfg.Walkers.ULASteps = MaxULASteps
	cfg.Iterations = 2
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	start := time.Now()
	_, err := Run(ctx, Options{Config: cfg, OutDir: dir, Logger: quiet})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run returned %v, want ErrInterrupted", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancellation took %v to be honoured", d)
	}
	if it := ckptIteration(t, dir); it != "0" {
		t.Fatalf("checkpoint at iteration %s, want 0", it)
	}
}

// TestResumeRefusesBadCheckpoint: a re-sealed checkpoint whose state is out
// of range, or a configuration with fewer iterations than the checkpoint,
// is refused by --resume with an error naming the problem, and nothing in
// the run dir is rewritten.
func TestResumeRefusesBadCheckpoint(t *testing.T) {
	cfg := tinyConfig(Jarzynski)
	cfg.Data.N, cfg.Walkers.N = 64, 32
	cfg.Iterations, cfg.Log.CheckpointEvery = 6, 3
	base := t.TempDir()
	if _, err := Run(context.Background(), Options{Config: cfg, OutDir: base, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(CheckpointDir, LatestCkpt)
	good, err := os.ReadFile(filepath.Join(base, ckpt))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(c *models.Container, st map[string]any)) []byte {
		c, err := models.DecodeContainer(good, "good")
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := c.JSON("state", &st); err != nil {
			t.Fatal(err)
		}
		f(c, st)
		if err := c.PutJSON("state", st); err != nil {
			t.Fatal(err)
		}
		b, err := c.Encode() // re-sealed: a valid SHA-256
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	setNaN := func(section string) func(*models.Container, map[string]any) {
		return func(c *models.Container, _ map[string]any) {
			v, _ := c.Floats(section)
			v[len(v)-1] = math.NaN()
			c.PutFloats(section, v)
		}
	}
	for _, tc := range []struct {
		name  string
		ckpt  []byte
		iters int
		want  string
		key   string // the *config.KeyError's key, if one
	}{
		{"iteration -5", edit(func(_ *models.Container, st map[string]any) { st["iter"] = -5 }), 6, "iteration -5 is negative", ""},
		{"iterations below the checkpoint", good, 4, `key "iterations" must be >= the checkpoint's iteration 6 to resume it, got 4`, "iterations"},
		{"iteration past iterations", edit(func(_ *models.Container, st map[string]any) { st["iter"] = 120 }), 50, "iteration 120", "iterations"},
		{"log Z reference 1e400", func() []byte {
			c, _ := models.DecodeContainer(edit(func(_ *models.Container, st map[string]any) { st["log_z_ref"] = 12345.5 }), "x")
			b, _ := c.Bytes("state")
			c.PutBytes("state", []byte(strings.Replace(string(b), "12345.5", "1e400", 1)))
			enc, _ := c.Encode()
			return enc
		}(), 6, `decoding section "state"`, ""},
		{"negative elapsed", edit(func(_ *models.Container, st map[string]any) { st["elapsed_seconds"] = -1 }), 6, "elapsed time -1", ""},
		{"optimizer step past the iteration", edit(func(_ *models.Container, st map[string]any) { st["opt_t"] = 7 }), 6, "optimizer step 7", ""},
		{"negative resamplings", edit(func(_ *models.Container, st map[string]any) { st["resamplings"] = -1 }), 6, "-1 resamplings", ""},
		{"NaN walker position", edit(setNaN("walkers")), 6, "has position entry NaN", ""},
		{"NaN log-weight", edit(setNaN("log_weights")), 6, "has log-weight NaN", ""},
		{"NaN energy", edit(setNaN("energies")), 6, "has energy NaN", ""},
		{"walkers section short", edit(func(c *models.Container, _ map[string]any) {
			v, _ := c.Floats("walkers")
			c.PutFloats("walkers", v[:len(v)-2])
		}), 6, "section walkers has", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range []string{ConfigFile, MetricsFile, ckpt} {
				b, err := os.ReadFile(filepath.Join(base, f))
				if err != nil {
					t.Fatal(err)
				}
				if f == ckpt {
					b = tc.ckpt
				}
				os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := snapshotDir(t, dir)
			c := cfg
			c.Iterations = tc.iters
			_, err := Run(context.Background(), Options{Config: c, OutDir: dir, Resume: true, Logger: quiet})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), filepath.Join(dir, ckpt)) {
				t.Fatalf("resume returned %v, want an error naming the checkpoint and saying %q", err, tc.want)
			}
			var ke *config.KeyError
			if tc.key != "" && (!errors.As(err, &ke) || ke.Key != tc.key || ke.File != filepath.Join(dir, ConfigFile)) {
				t.Fatalf("error %v is not a KeyError for %q in %s", err, tc.key, filepath.Join(dir, ConfigFile))
			}
			if after := snapshotDir(t, dir); after != before {
				t.Fatalf("the run dir changed on refusal:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshotDir describes every file under dir with its content.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		data, _ := os.ReadFile(p)
		b.WriteString(p + ":" + string(data) + "\n")
		return nil
	})
	return b.String()
}

// TestCancelBeforeFinalEvaluation: a cancellation after the last iteration
// stops before the final evaluation (data set, quadrature, plots) with a
// checkpoint of the last iteration, from which --resume writes the rest.
func TestCancelBeforeFinalEvaluation(t *testing.T) {
	cfg := tinyConfig(Jarzynski)
	cfg.Data.N, cfg.Walkers.N, cfg.Iterations = 64, 32, 2
	cfg.Log.CheckpointEvery = 1000
	dir := t.TempDir()
	// checks: iterations 0 and 1 start, then ← the check after the loop
	ctx := &cancelAt{Context: context.Background(), n: 3}
	if _, err := Run(ctx, Options{Config: cfg, OutDir: dir, Logger: quiet}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Run returned %v, want ErrInterrupted", err)
	}
	if it := ckptIteration(t, dir); it != "2" {
		t.Fatalf("checkpoint at iteration %s, want 2", it)
	}
	if _, err := os.Stat(filepath.Join(dir, SummaryFile)); err == nil {
		t.Fatal("summary written after the cancellation")
	}
	sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Resume: true, Logger: quiet})
	if err != nil || sum.Iterations != 2 {
		t.Fatalf("resume: %v %+v", err, sum)
	}
	if _, err := os.Stat(filepath.Join(dir, models.WeightsFile)); err != nil {
		t.Fatal(err)
	}
}
