// Package cudashim holds the cgo compatibility layer between
// gorgonia.org/cu/dnn v0.9.6 and cuDNN 9 for -tags cuda builds; in the
// default (CPU) build it is empty. See docs/GPU.md.
package cudashim
