package ortops

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/internal/ortlib"
)

func options(t *testing.T) *ort.SessionOptions {
	t.Helper()
	so, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	return so
}

// freshEnv marks the child process TestRegisterBadLibrary runs itself in.
const freshEnv = "JARZYN_ORTOPS_TEST_FRESH_PROCESS"

// The domain is created on the first successful Register only, so a bad path
// fails clearly and a later good one still works. That needs a process in
// which no Register has succeeded yet, and any other test of the package (in
// any order, -test.shuffle included) registers the operators process-wide, so
// the test reruns itself alone in a fresh copy of the test binary.
func TestRegisterBadLibrary(t *testing.T) {
	if os.Getenv(freshEnv) != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRegisterBadLibrary$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), freshEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestRegisterBadLibrary") {
			t.Fatalf("TestRegisterBadLibrary in a fresh process: %v\n%s", err, out)
		}
		t.Logf("fresh process:\n%s", out)
		return
	}
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
	mu.Lock()
	fresh := !inited
	mu.Unlock()
	if !fresh || LibraryVersion() != "" {
		t.Fatalf("the operators were registered before the test ran (library version %q)", LibraryVersion())
	}
	so := options(t)
	defer so.Destroy()
	for _, bad := range []string{"", "/nonexistent/libonnxruntime.so"} {
		err := Register(so, bad)
		if err == nil {
			t.Fatalf("Register with library %q succeeded", bad)
		}
		t.Logf("%q: %v", bad, err)
		if v := LibraryVersion(); v != "" {
			t.Fatalf("after Register(%q) failed, LibraryVersion() = %q, want \"\"", bad, v)
		}
	}
	if err := Register(so, lib); err != nil {
		t.Fatalf("Register after a failed attempt: %v", err)
	}
	if v := LibraryVersion(); !strings.HasPrefix(v, "1.") {
		t.Errorf("LibraryVersion() = %q", v)
	}
}

func TestRegisterTwiceAndDestroyed(t *testing.T) {
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
	for i := 0; i < 2; i++ {
		so := options(t)
		if err := Register(so, lib); err != nil {
			t.Fatalf("Register #%d: %v", i, err)
		}
		so.Destroy()
		if err := Register(so, lib); err == nil || !strings.Contains(err.Error(), "destroyed") {
			t.Fatalf("Register on destroyed options: %v", err)
		}
	}
}
