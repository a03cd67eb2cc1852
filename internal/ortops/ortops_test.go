package ortops

import (
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

// Runs first: the domain is created on the first successful Register only,
// so a bad path fails clearly and a later good one still works.
func TestRegisterBadLibrary(t *testing.T) {
	lib, err := ortlib.Init("")
	if err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
	so := options(t)
	defer so.Destroy()
	for _, bad := range []string{"", "/nonexistent/libonnxruntime.so"} {
		err := Register(so, bad)
		if err == nil {
			t.Fatalf("Register with library %q succeeded", bad)
		}
		t.Logf("%q: %v", bad, err)
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
