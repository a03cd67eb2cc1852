package train_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/train"
)

// buildTrain builds cmd/jarzyn-train with this test binary's build tags
// into a temporary folder and returns its path.
func buildTrain(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build jarzyn-train: %v", err)
	}
	tags := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-tags" {
				tags = s.Value
			}
		}
	}
	bin := filepath.Join(t.TempDir(), "jarzyn-train")
	cmd := exec.Command(goBin, "build", "-tags="+tags, "-o", bin, "github.com/jarzyn/jarzyn/cmd/jarzyn-train")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// staleTemps lists the temp files (atomicfile's pattern) of a run dir's files.
func staleTemps(dir string) []string {
	var out []string
	for _, d := range []string{dir, filepath.Join(dir, train.CheckpointDir)} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp") {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// TestKillDuringCheckpointWrites runs the real jarzyn-train on a tiny
// config that checkpoints every iteration (so that most of its time goes to
// writing checkpoints), SIGKILLs it at random moments, and checks that each
// next run resumes from an intact checkpoint (or, killed before the first
// one, refuses --resume cleanly and starts afresh), never with a panic, and
// that after a run that completes no temp file is left.
func TestKillDuringCheckpointWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills jarzyn-train")
	}
	bin := buildTrain(t)
	dir := filepath.Join(t.TempDir(), "run")
	cfg := filepath.Join(t.TempDir(), "tiny.yaml")
	err := os.WriteFile(cfg, []byte(`name: kill
iterations: 1000000
model: {family: gmm, dim: 2, modes: 2}
data: {n: 256}
walkers: {n: 4096}
optimizer: {kind: sgd, lr: 0.01}
log: {every: 100000, checkpoint_every: 1, eval_every: 1, plots: false}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, train.CheckpointDir, train.LatestCkpt)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	run := func(args ...string) (*exec.Cmd, *bytes.Buffer) {
		var stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stderr = &stderr
		return cmd, &stderr
	}
	noPanic := func(stderr string) {
		if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
			t.Fatalf("jarzyn-train crashed:\n%s", stderr)
		}
	}
	// --resume before any checkpoint exists is a clean refusal
	cmd, stderr := run("--resume", dir)
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), dir) {
		t.Fatalf("resume without a checkpoint: %v\n%s", err, stderr)
	}
	noPanic(stderr.String())
	last, kills, leftTemps := -1, 6, 0
	for k := 0; k < kills; k++ {
		args := []string{"--config", cfg, "--out", dir}
		if _, err := os.Stat(ckpt); err == nil {
			args = []string{"--resume", dir}
		}
		cmd, stderr := run(args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(150+rng.IntN(450)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		noPanic(stderr.String())
		leftTemps += len(staleTemps(dir))
		if _, err := os.Stat(ckpt); err != nil {
			continue // killed before its first checkpoint
		}
		c, err := models.ReadContainer(ckpt)
		if err != nil {
			t.Fatalf("kill %d left a checkpoint that does not load: %v", k, err)
		}
		it, err := strconv.Atoi(c.Meta[models.MetaIteration])
		if err != nil || it < last {
			t.Fatalf("kill %d: checkpoint iteration %q after %d", k, c.Meta[models.MetaIteration], last)
		}
		last = it
	}
	if last < 0 {
		t.Fatal("no run lived to write a checkpoint")
	}
	// the next run completes and leaves no temp behind
	cmd, stderr = run("--resume", dir, "--set", fmt.Sprintf("iterations=%d", last+2))
	if err := cmd.Run(); err != nil {
		t.Fatalf("final resume from iteration %d: %v\n%s", last, err, stderr)
	}
	if left := staleTemps(dir); len(left) > 0 {
		t.Fatalf("temp files left after a completed run: %v", left)
	}
	t.Logf("%d kills, last checkpoint at iteration %d, %d temp files seen after kills, all removed", kills, last, leftTemps)
}
