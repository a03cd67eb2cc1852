// Command jarzyn-serve samples from and serves exported jarzyn energy
// models with ONNX Runtime:
//
//	jarzyn-serve sample --model FILE --n N --steps K [--h H] [--seed S] [--init base|uniform]
//	                    [--weighted] [--format csv|npy|png] --out FILE
//	jarzyn-serve http (--model FILE | --models DIR) [--addr :8080]
//
// Both take --device cpu|cuda|auto and --ort-lib PATH. All logic lives in
// package serve; see its documentation.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/jarzyn/jarzyn/serve"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := serve.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
