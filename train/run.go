package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jarzyn/jarzyn/internal/atomicfile"
	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/internal/progress"
	"github.com/jarzyn/jarzyn/models"
)

// Options says what to run and where.
type Options struct {
	// Config is the resolved configuration.
	Config Config
	// OutDir is the run dir; empty means runs/<name>.
	OutDir string
	// Resume continues the run in OutDir from its latest checkpoint.
	Resume bool
	// Progress receives the progress bar (a terminal) or nothing; nil is stderr.
	Progress *os.File
	// Logger receives structured log lines; nil is slog.Default().
	Logger *slog.Logger
}

// Summary is summary.json.
type Summary struct {
	Method         Method          `json:"method"`
	Seed           uint64          `json:"seed"`
	Dtype          string          `json:"dtype"`
	Iterations     int             `json:"iterations"`
	Seconds        float64         `json:"seconds"`
	ItersPerSecond float64         `json:"iterations_per_second"`
	CEEstimate     *float64        `json:"ce_estimate"`
	LogZEstimate   *float64        `json:"log_z_estimate"`
	ESS            float64         `json:"ess"`
	Resamplings    int             `json:"resamplings"`
	MonitorLogZ    *float64        `json:"monitor_log_z_estimate,omitempty"`
	MonitorCE      *float64        `json:"monitor_ce_estimate,omitempty"`
	Teacher        *TeacherSummary `json:"teacher,omitempty"`
	ModeMasses     []float64       `json:"mode_masses,omitempty"`
	LogZ           *float64        `json:"log_z"`
	LogZMethod     string          `json:"log_z_method,omitempty"`
	CE             *float64        `json:"ce"`
	ExactKL        *float64        `json:"exact_kl"`
	EstimatedKL    *float64        `json:"estimated_kl"`
	TeacherEntropy *float64        `json:"teacher_entropy"` // null without a teacher (image files)
	ConfigDigest   string          `json:"config_digest"`
	// Accept is the MALA acceptance rate of the gradient population over
	// the run (walkers.kernel mala); absent with ULA.
	Accept *float64 `json:"accept,omitempty"`
	// MALAStepSize is MALA's step size at the end of the run when it adapts
	// (walkers.target_accept); absent otherwise.
	MALAStepSize *float64 `json:"mala_step_size,omitempty"`
	// HeuristicWeights is true with walkers.heuristic: the log-weights, log
	// Ẑ and the CE estimate are not exact (docs/METHOD.md §5.2); absent otherwise.
	HeuristicWeights bool `json:"heuristic_weights,omitempty"`
	// ClassSummary holds the class fractions when log.classifier is set.
	*ClassSummary
}

// TeacherSummary describes the mixture teacher.
type TeacherSummary struct {
	Means  [][]float64 `json:"means"`
	Masses []float64   `json:"masses"`
	Stds   []float64   `json:"stds"`
}

func fptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// Paths inside a run dir.
const (
	ConfigFile    = "config.yaml"
	MetricsFile   = "metrics.csv"
	SummaryFile   = "summary.json"
	CheckpointDir = "checkpoints"
	LatestCkpt    = "latest.ckpt"
	PlotsDir      = "plots"
)

// RunDir returns the run dir for opts.
func (o Options) RunDir() string {
	if o.OutDir != "" {
		return o.OutDir
	}
	return filepath.Join("runs", o.Config.Name)
}

// Run trains as configured, writing the run dir. On cancellation it writes a
// checkpoint and returns ErrInterrupted.
func Run(ctx context.Context, opts Options) (*Summary, error) {
	if opts.Config.Dtype == "float32" {
		return runTyped[float32](ctx, opts)
	}
	return runTyped[float64](ctx, opts)
}

func runTyped[T Float](ctx context.Context, opts Options) (*Summary, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := checkDevice(cfg.Device); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	dir := opts.RunDir()
	ckptPath := filepath.Join(dir, CheckpointDir, LatestCkpt)
	t, err := newTrainer[T](cfg)
	if err != nil {
		return nil, err
	}
	cm, err := newClassMetric(cfg, t.labels, t.data)
	if err != nil {
		return nil, err
	}
	cfgYAML, err := cfg.YAML()
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if err := t.openRunDir(opts.Resume, dir, ckptPath, log); err != nil {
		return nil, err
	}
	if cfg.Walkers.Heuristic {
		log.Warn("heuristic weights: walkers.heuristic is on, so the log-weights, log Ẑ and the CE estimate are not exact (docs/METHOD.md §5.2)",
			"noise_std", cfg.Walkers.NoiseStd, "drift_clamp", cfg.Walkers.DriftClamp, "revert_outside", cfg.Walkers.RevertOutside, "warmup_steps", cfg.Walkers.WarmupSteps)
	}
	if removed := removeStaleTemps(dir); len(removed) > 0 {
		log.Info("removed temp files left by a killed run", "files", removed)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), cfgYAML, 0o644); err != nil {
		return nil, err
	}
	mw, err := openMetrics(filepath.Join(dir, MetricsFile), len(t.teacher.Means), t.mon != nil, cm.classes(), opts.Resume, cfg.Walkers.Kernel == "mala")
	if err != nil {
		return nil, err
	}
	defer mw.close()

	out := opts.Progress
	if out == nil {
		out = os.Stderr
	}
	bar := progress.New(out, "train "+string(cfg.Method), t.iter, cfg.Iterations, log, 0)
	start := time.Now()
	hooks := Hooks{
		Row: func(r row, total int) {
			cm.atRow(t, &r, dir, log)
			mw.write(r)
			bar.Update(r.Iter, "ce", r.CE, "ess", r.ESS, "resamplings", r.Resamplings)
		},
		Checkpoint: func(iter int) error {
			c, err := t.checkpoint(t.elapsed+time.Since(start).Seconds(), cfgYAML)
			if err != nil {
				return err
			}
			if err := models.WriteContainer(ckptPath, c); err != nil {
				return fmt.Errorf("train: writing checkpoint: %w", err)
			}
			return nil
		},
	}
	runErr := t.run(ctx, hooks, start)
	bar.Done()
	if runErr != nil {
		if errors.Is(runErr, ErrInterrupted) {
			log.Info("interrupted; checkpoint written", "iteration", t.iter, "checkpoint", ckptPath, "resume", "jarzyn-train --resume "+dir)
		}
		return nil, runErr
	}
	if ctx.Err() != nil {
		// the final evaluation and the plots can take long: stop before them
		// with a checkpoint at the last iteration, from which --resume
		// writes them
		if err := hooks.Checkpoint(t.iter); err != nil {
			return nil, err
		}
		log.Info("interrupted before the final evaluation; checkpoint written", "iteration", t.iter, "checkpoint", ckptPath, "resume", "jarzyn-train --resume "+dir)
		return nil, ErrInterrupted
	}
	// final row, summary, weights, plots
	seconds := t.elapsed + time.Since(start).Seconds()
	final := t.metrics(start, true) // evaluated: mean U over the whole data set
	final.Seconds = seconds
	cm.atEnd(t, &final, log)
	mw.write(final)
	mw.close()
	sum := t.summary(final, seconds)
	sum.ClassSummary = cm.summary(final.Classes)
	b, _ := json.MarshalIndent(sum, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, SummaryFile), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	if err := models.WriteParams(filepath.Join(dir, models.WeightsFile), t.ps.params(), t.exportMeta()); err != nil {
		return nil, err
	}
	if cfg.Log.Plots && ctx.Err() != nil {
		log.Info("interrupted: plots skipped; summary and weights are written", "resume", "jarzyn-train --resume "+dir)
		return nil, ErrInterrupted
	}
	if cfg.Log.Plots {
		if err := writeRunPlots(dir, t.ps.params(), t.teacher, t.data, toF64(t.pop.X), cfg.Log.Grid, cfg.weightLabel()); err != nil {
			log.Warn("plots failed", "err", err)
		}
		if err := cm.plots(t, dir); err != nil {
			log.Warn("class-fraction plots failed", "err", err)
		}
	}
	return sum, nil
}

func (t *trainer[T]) summary(final row, seconds float64) *Summary {
	s := &Summary{Method: t.cfg.Method, Seed: t.cfg.Seed, Dtype: t.cfg.Dtype, Iterations: t.iter, Seconds: seconds,
		CEEstimate: fptr(final.CE), LogZEstimate: fptr(final.LogZ), ESS: final.ESS, Resamplings: final.Resamplings,
		MonitorLogZ: fptr(final.MonLogZ), MonitorCE: fptr(final.MonCE), TeacherEntropy: fptr(-t.logRhoStar),
		ConfigDigest: t.cfg.Digest(), HeuristicWeights: t.cfg.Walkers.Heuristic,
	}
	if len(t.teacher.Means) > 0 {
		s.Teacher = &TeacherSummary{Means: t.teacher.Means, Masses: t.teacher.Masses, Stds: t.teacher.Stds}
	}
	if seconds > 0 {
		s.ItersPerSecond = float64(t.iter) / seconds
	}
	if t.mala.Proposed > 0 {
		s.Accept = fptr(float64(t.mala.Accepted) / float64(t.mala.Proposed))
	}
	if t.cfg.Walkers.TargetAccept > 0 && t.mala.H > 0 {
		s.MALAStepSize = fptr(t.mala.H)
	}
	if ev := final.Eval; ev != nil {
		s.ModeMasses = ev.ModeMasses
		s.LogZ, s.LogZMethod, s.CE = fptr(ev.LogZ), ev.LogZMethod, fptr(ev.CE)
		s.ExactKL, s.EstimatedKL = fptr(ev.ExactKL), fptr(ev.EstimatedKL)
	}
	return s
}

// metricsWriter appends rows to metrics.csv, flushing each one.
type metricsWriter struct {
	f       *os.File
	modes   int
	mon     bool
	classes []int // classifier labels (log.classifier), nil without
	accept  bool  // the MALA acceptance column (walkers.kernel mala)
}

func metricsHeader(modes int, mon bool, classes []int, accept bool) string {
	cols := []string{"iter", "seconds", "ce_estimate", "log_z_estimate", "ess", "resamplings", "mean_u_data", "mean_u_walkers", "grad_norm"}
	if accept {
		cols = append(cols, "accept")
	}
	if mon {
		cols = append(cols, "log_z_monitor", "ce_monitor", "ess_monitor")
	}
	for j := 0; j < modes; j++ {
		cols = append(cols, fmt.Sprintf("mass_%d", j))
	}
	cols = append(cols, "log_z", "exact_kl", "estimated_kl")
	cols = append(cols, classColumns(classes)...)
	return strings.Join(cols, ",")
}

func openMetrics(path string, modes int, mon bool, classes []int, appendOnly, accept bool) (*metricsWriter, error) {
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if appendOnly {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	if st, _ := f.Stat(); st.Size() == 0 {
		fmt.Fprintln(f, metricsHeader(modes, mon, classes, accept))
	}
	return &metricsWriter{f: f, modes: modes, mon: mon, classes: classes, accept: accept}, nil
}

func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

func (m *metricsWriter) write(r row) {
	if m.f == nil {
		return
	}
	f := []string{strconv.Itoa(r.Iter), num(r.Seconds), num(r.CE), num(r.LogZ), num(r.ESS), strconv.Itoa(r.Resamplings),
		num(r.MeanUData), num(r.MeanUWalk), num(r.GradNorm)}
	if m.accept {
		f = append(f, num(r.Accept))
	}
	if m.mon {
		f = append(f, num(r.MonLogZ), num(r.MonCE), num(r.MonESS))
	}
	for j := 0; j < m.modes; j++ {
		v := math.NaN()
		if r.Eval != nil && r.Eval.ModeMasses != nil {
			v = r.Eval.ModeMasses[j]
		}
		f = append(f, num(v))
	}
	if r.Eval != nil {
		f = append(f, num(r.Eval.LogZ), num(r.Eval.ExactKL), num(r.Eval.EstimatedKL))
	} else {
		f = append(f, "", "", "")
	}
	f = append(f, classCells(m.classes, r.Classes)...)
	fmt.Fprintln(m.f, strings.Join(f, ","))
}

func (m *metricsWriter) close() {
	if m.f != nil {
		m.f.Close()
		m.f = nil
	}
}

// truncateMetrics drops rows at or after iteration iter (they will be written again).
func truncateMetrics(path string, iter int) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	var keep []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for first := true; sc.Scan(); first = false {
		line := sc.Text()
		if !first {
			it, err := strconv.Atoi(strings.SplitN(line, ",", 2)[0])
			if err != nil || it >= iter {
				continue
			}
		}
		keep = append(keep, line)
	}
	return atomicfile.WriteFile(path, []byte(strings.Join(keep, "\n")+"\n"), 0o644)
}

// openRunDir prepares the run dir: on resume it loads and checks the
// checkpoint (refusing before anything in the dir is rewritten) and cuts
// metrics.csv back to the checkpoint's iteration; on a fresh run it refuses
// a dir that already holds a run, draws θ0 and the walkers, and creates it.
func (t *trainer[T]) openRunDir(resume bool, dir, ckptPath string, log *slog.Logger) error {
	if resume {
		c, err := models.ReadContainer(ckptPath)
		if err != nil {
			return fmt.Errorf("train: cannot resume %s: %w", dir, err)
		}
		if c.Kind != "checkpoint" {
			return fmt.Errorf("train: %s is a %q file, not a checkpoint", ckptPath, c.Kind)
		}
		if err := t.restore(c); err != nil {
			return fmt.Errorf("train: cannot resume from %s: %w", ckptPath, err)
		}
		if err := t.checkRestored(); err != nil {
			// refused before anything in the run dir is rewritten
			return fmt.Errorf("train: cannot resume from %s: %w", ckptPath, config.InFile(err, filepath.Join(dir, ConfigFile)))
		}
		if err := truncateMetrics(filepath.Join(dir, MetricsFile), t.iter); err != nil {
			return err
		}
		log.Info("resuming", "run", dir, "iteration", t.iter, "of", t.cfg.Iterations)
	} else {
		if _, err := os.Stat(ckptPath); err == nil {
			return fmt.Errorf("train: %s already holds a run (%s); resume it with --resume %s or choose another --out", dir, ckptPath, dir)
		}
		if err := t.initFresh(); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("train: %w", err)
		}
	}
	return nil
}
