// Package progress draws a one-line progress bar on a terminal and falls
// back to periodic structured log lines when the output is not a terminal.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// Bar reports progress of a job of Total steps.
type Bar struct {
	w       io.Writer
	tty     bool
	total   int
	label   string
	start   time.Time
	last    time.Time
	every   time.Duration
	logger  *slog.Logger
	drawn   bool
	startAt int
}

// IsTerminal reports whether f is a character device (a terminal).
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New makes a bar on f; when f is not a terminal, progress goes to logger
// every `every` (10 s when 0).
func New(f *os.File, label string, startAt, total int, logger *slog.Logger, every time.Duration) *Bar {
	if every == 0 {
		every = 10 * time.Second
	}
	if logger == nil {
		logger = slog.Default()
	}
	now := time.Now()
	return &Bar{w: f, tty: IsTerminal(f), total: total, label: label, start: now, every: every, logger: logger, startAt: startAt}
}

// Update reports that step of total is done, with extra key/value pairs.
func (b *Bar) Update(step int, kv ...any) {
	now := time.Now()
	if b.tty && now.Sub(b.last) < 100*time.Millisecond && step < b.total {
		return
	}
	if !b.tty && now.Sub(b.last) < b.every && step < b.total {
		return
	}
	b.last = now
	rate := float64(step-b.startAt) / now.Sub(b.start).Seconds()
	if !b.tty {
		args := append([]any{"step", step, "total", b.total, "rate_per_s", fmt.Sprintf("%.1f", rate)}, kv...)
		b.logger.Info(b.label, args...)
		return
	}
	frac := float64(step) / float64(max(b.total, 1))
	const width = 24
	filled := int(frac * width)
	var sb strings.Builder
	fmt.Fprintf(&sb, "\r%s [%s%s] %d/%d %.1f/s", b.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), step, b.total, rate)
	for i := 0; i+1 < len(kv); i += 2 {
		switch v := kv[i+1].(type) {
		case float64:
			fmt.Fprintf(&sb, " %v=%.4g", kv[i], v)
		default:
			fmt.Fprintf(&sb, " %v=%v", kv[i], v)
		}
	}
	sb.WriteString("\x1b[K")
	io.WriteString(b.w, sb.String())
	b.drawn = true
}

// Done ends the bar's line.
func (b *Bar) Done() {
	if b.tty && b.drawn {
		io.WriteString(b.w, "\n")
	}
}
