// Command jarzyn-serve samples from and serves exported jarzyn energy
// models with ONNX Runtime:
//
//	jarzyn-serve sample --model FILE --n N --steps K [--h H] [--seed S] [--init base|uniform]
//	                    [--weighted] [--format csv|npy|png] --out FILE
//	jarzyn-serve http (--model FILE | --models DIR) [--addr :8080]
//
// Both take --device cpu|cuda|auto and --ort-lib PATH. All logic lives in
// package serve (serve.Main); see its documentation.
//
// Exit status: 0 on success, 2 for a usage error (bad command, flag or flag
// value, missing --model/--out, extra arguments), 1 when the work fails (a
// model that cannot be loaded, an output that cannot be written), 130 when
// sample is stopped by SIGINT/SIGTERM (nothing written); http drains on
// SIGTERM and exits 0.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/jarzyn/jarzyn/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command line (args without the program name); it returns the
// exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return serve.Main(ctx, args, stdout, stderr)
}
