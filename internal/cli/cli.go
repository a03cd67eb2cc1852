// Package cli is the command-line shape the jarzyn binaries share: their exit
// codes, flag parsing that tells -h from a usage error, and the one-line hint
// printed after a usage error.
//
// Every binary's main is
//
//	func main() {
//		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
//		stop()
//		os.Exit(code)
//	}
//
// and run returns one of the codes below.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes.
const (
	// ExitOK: the command did what it was asked (also after -h/--help).
	ExitOK = 0
	// ExitFailure: the command line was fine but the work failed: a file that
	// cannot be read or written, a failed training run, a failed parity check.
	ExitFailure = 1
	// ExitUsage: the command line is wrong: an unknown or malformed flag, a
	// bad flag value, a missing required flag, an unexpected argument (for
	// jarzyn-train also a config key or value that is refused).
	ExitUsage = 2
	// ExitInterrupted: stopped by SIGINT/SIGTERM after leaving a consistent
	// state (jarzyn-train: a checkpoint to resume from; jarzyn-serve sample:
	// nothing written).
	ExitInterrupted = 130
)

// NewFlagSet returns a flag set named name (the command as a user types it,
// e.g. "jarzyn-serve sample") whose usage, printed on -h, is synopsis (one or
// more lines, without a trailing newline) followed by the flags.
func NewFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args with fs. After -h/--help (also a bare -h at the end of
// args where the command has a flag h) it prints fs.Usage to the flag
// set's output and returns (ExitOK, false); after a bad flag it prints the
// message and the hint (UsageError) and returns (ExitUsage, false); otherwise
// it returns (ExitOK, true). Positional arguments are left to the caller
// (see NoArgs).
func Parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	out, usage := fs.Output(), fs.Usage
	if usage == nil {
		usage = fs.PrintDefaults
	}
	if n := len(args); n > 0 && (args[n-1] == "-h" || args[n-1] == "--h") && fs.Lookup("h") != nil {
		// h is a flag of this command (jarzyn-serve sample's step size), so
		// the flag package would refuse a bare -h for want of a value; as
		// the last argument it can only be a request for help
		usage()
		return ExitOK, false
	}
	// the flag package prints the whole usage after any error; keep it quiet
	// and print the error with a one-line hint instead
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return ExitOK, false
	case err != nil:
		return UsageError(out, fs.Name(), "%v", err), false
	}
	return ExitOK, true
}

// NoArgs refuses positional arguments left after Parse: it prints a usage
// error naming them and returns (ExitUsage, false).
func NoArgs(fs *flag.FlagSet) (code int, ok bool) {
	if fs.NArg() == 0 {
		return ExitOK, true
	}
	return UsageError(fs.Output(), fs.Name(), "unexpected arguments %q", fs.Args()), false
}

// UsageError prints "name: message" and the hint "Run 'name --help' for usage."
// to w, and returns ExitUsage.
func UsageError(w io.Writer, name, format string, a ...any) int {
	fmt.Fprintf(w, "%s: %s\n%s\n", name, fmt.Sprintf(format, a...), Hint(name))
	return ExitUsage
}

// Hint is the line printed after a usage error.
// It names --help rather than -h, which jarzyn-serve sample also uses for
// its step size.
func Hint(name string) string { return "Run '" + name + " --help' for usage." }

// Failure prints "name: err" to w and returns ExitFailure.
func Failure(w io.Writer, name string, err error) int {
	fmt.Fprintf(w, "%s: %v\n", name, err)
	return ExitFailure
}
