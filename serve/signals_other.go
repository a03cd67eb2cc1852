//go:build !unix

package serve

// withGoSignalHandlers runs f; on this platform there is nothing to restore.
func withGoSignalHandlers(f func() error) (int, error) { return 0, f() }
