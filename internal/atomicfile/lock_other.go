//go:build !unix

package atomicfile

import (
	"os"
	"time"
)

// lock is a no-op where flock is unavailable.
func lock(*os.File) error { return nil }

// staleAge is how old a temp file must be to count as stale where writers
// cannot hold a lock on it.
const staleAge = time.Hour

// unheld reports whether the temp file at p is older than staleAge.
func unheld(p string) bool {
	st, err := os.Stat(p)
	return err == nil && time.Since(st.ModTime()) > staleAge
}
