package serve

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress draws a one-line progress bar on a terminal, at most ten times a
// second; on anything else it draws nothing.
type progress struct {
	w       io.Writer
	on      bool
	label   string
	walkers int
	start   time.Time
	last    time.Time
	drawn   bool
}

func newProgress(w io.Writer, on bool, label string, walkers int) *progress {
	return &progress{w: w, on: on && isTerminal(w), label: label, walkers: walkers, start: time.Now()}
}

// update is a SampleConfig.Progress callback.
func (p *progress) update(done, total int) {
	if !p.on {
		return
	}
	now := time.Now()
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	fill := 0
	if total > 0 {
		fill = width * done / total
	}
	el := now.Sub(p.start)
	rate := float64(done) * float64(p.walkers) / el.Seconds()
	eta := "?"
	if done > 0 {
		eta = (time.Duration(float64(el) * float64(total-done) / float64(done))).Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r%s [%s%s] %d/%d steps  %.3g walker-steps/s  ETA %s \x1b[K",
		p.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), done, total, rate, eta)
	p.drawn = true
}

// finish ends the progress line.
func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
