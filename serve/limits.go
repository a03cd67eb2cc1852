package serve

import (
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"
)

// Limits bounds what one sampling run may ask for. It is the one table both
// front ends check against: `jarzyn-serve sample` with HardLimits, the HTTP
// server with the limits of its ServerConfig (which may not exceed
// HardLimits). Every bound is > 0.
type Limits struct {
	// MaxN is the most walkers.
	MaxN int
	// MaxSteps is the most steps + extra_steps.
	MaxSteps int
	// MaxWalkerSteps bounds n·(steps + extra_steps), the run's work in model
	// evaluations of one walker.
	MaxWalkerSteps int64
	// MaxValues bounds n·d, the numbers of one copy of the walkers' positions
	// (the sampler holds a few such copies, and the output one).
	MaxValues int64
	// MaxThreads is the most ONNX Runtime intra-op threads per Run.
	MaxThreads int
}

// Hard limits: the most any run may ask for, on the command line or from a
// server configuration.
const (
	// HardMaxN is the most walkers of one run.
	HardMaxN = 10_000_000
	// HardMaxSteps is the most steps + extra_steps of one run.
	HardMaxSteps = 1_000_000_000
	// HardMaxWalkerSteps bounds n·(steps + extra_steps) of one run.
	HardMaxWalkerSteps = 10_000_000_000_000
	// HardMaxValues bounds n·d of one run: 1e8 float32 numbers are 400 MB
	// per copy of the walkers.
	HardMaxValues = 100_000_000
	// HardMaxThreadsCap caps HardLimits().MaxThreads on any machine.
	HardMaxThreadsCap = 256
	// HardMaxBodyBytes is the largest request body limit a server may set.
	HardMaxBodyBytes = 1 << 30
)

// HardLimits returns the bounds of `jarzyn-serve sample` and the ceiling of
// every ServerConfig limit: HardMaxN walkers, HardMaxSteps steps,
// HardMaxWalkerSteps walker-steps, HardMaxValues numbers, and 4 threads per
// CPU core (at most HardMaxThreadsCap).
func HardLimits() Limits {
	return Limits{MaxN: HardMaxN, MaxSteps: HardMaxSteps, MaxWalkerSteps: HardMaxWalkerSteps, MaxValues: HardMaxValues,
		MaxThreads: min(HardMaxThreadsCap, 4*runtime.NumCPU())}
}

// CheckThreads refuses a thread count outside [0, MaxThreads] (0 is the
// default, 1 thread per Run). The error is a *FieldError naming "threads".
func (l Limits) CheckThreads(threads int) error {
	if threads < 0 || threads > l.MaxThreads {
		return fieldErr("threads", "must be in [0, %d] (4 per CPU core, at most %d), got %d", l.MaxThreads, HardMaxThreadsCap, threads)
	}
	return nil
}

// Check refuses a run outside the limits: N, Steps, ExtraSteps, their
// product and RunBatch; with dim > 0 (the model's d) also n·d. The error is a
// *FieldError naming the setting ("n*steps" for the product).
func (l Limits) Check(cfg SampleConfig, dim int) error {
	if cfg.N < 1 || cfg.N > l.MaxN {
		return fieldErr("n", "must be in [1, %d], got %d", l.MaxN, cfg.N)
	}
	if cfg.Steps < 0 || cfg.Steps > l.MaxSteps {
		return fieldErr("steps", "must be in [0, %d], got %d", l.MaxSteps, cfg.Steps)
	}
	if cfg.ExtraSteps < 0 || cfg.ExtraSteps > l.MaxSteps-cfg.Steps {
		return fieldErr("extra_steps", "must be in [0, %d] (steps + extra_steps ≤ %d), got %d", l.MaxSteps-cfg.Steps, l.MaxSteps, cfg.ExtraSteps)
	}
	if ws := int64(cfg.N) * int64(cfg.TotalSteps()); ws > l.MaxWalkerSteps {
		return fieldErr("n*steps", "n·(steps+extra_steps) = %d exceeds the limit %d", ws, l.MaxWalkerSteps)
	}
	if cfg.RunBatch < 0 || cfg.RunBatch > l.MaxN {
		return fieldErr("run_batch", "must be in [0, %d], got %d", l.MaxN, cfg.RunBatch)
	}
	if dim > 0 {
		if vals := int64(cfg.N) * int64(dim); vals > l.MaxValues {
			return fieldErr("n", "n·d = %d·%d = %d numbers exceeds the limit %d", cfg.N, dim, vals, l.MaxValues)
		}
	}
	return nil
}

// maxEcho is the most bytes of a client's string that an error message or
// a log line repeats (see clip).
const maxEcho = 64

// clip returns s when it has at most maxEcho bytes, else its first maxEcho
// bytes (cut at a rune boundary) followed by "…". A clipped string is never
// equal to a short valid value, so clipping before validating keeps a bad
// value bad.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	i := maxEcho
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// clipq is clip(s) quoted as %q quotes it.
func clipq(s string) string { return fmt.Sprintf("%q", clip(s)) }

// maxMessage bounds an error message sent to a client or logged.
const maxMessage = 1024

// clipMessage bounds a whole message to maxMessage bytes.
func clipMessage(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	i := maxMessage
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return strings.ToValidUTF8(s[:i], "") + "…"
}
