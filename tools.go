//go:build tools

// Package jarzyn pins dependencies that are only reached through build tags.
package jarzyn

import (
	_ "github.com/spf13/viper"
	_ "github.com/yalue/onnxruntime_go"
	_ "go4.org/unsafe/assume-no-moving-gc"
	_ "gonum.org/v1/netlib/blas/netlib"
	_ "gonum.org/v1/plot"
	_ "google.golang.org/protobuf/encoding/protowire"
	_ "gorgonia.org/gorgonia"
	_ "gorgonia.org/tensor"
)
