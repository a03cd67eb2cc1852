package serve

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// zModel is the Gaussian test model with z = z, so that the file a version
// was loaded from can be told by its log Z estimate: (d/2)·log 2π − z.
func zModel(t testing.TB, z float64) []byte {
	t.Helper()
	g := testGaussian
	g.z = z
	return g.build(t)
}

// servedZ is the z of the file that a served version was loaded from, NaN
// when the version is not served.
func servedZ(reg *Registry, name, version string) float64 {
	m, err := reg.Get(name, version)
	if err != nil {
		return math.NaN()
	}
	defer m.Release()
	return math.Round(1e9*(math.Log(2*math.Pi)-m.Info.LogZEstimate)) / 1e9
}

// putVersion writes DIR/name/version/model.onnx (the model of z) and its
// seal.
func putVersion(t testing.TB, dir, name, version string, z float64) {
	t.Helper()
	writeFile(t, dir, filepath.Join(name, version, ModelFileName), zModel(t, z))
}

// putRaw writes DIR/name/version/model.onnx as data and, unless seal is
// nil, a seal of seal's bytes beside it.
func putRaw(t testing.TB, dir, name, version string, data, seal []byte) {
	t.Helper()
	p := filepath.Join(dir, name, version, ModelFileName)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if seal != nil {
		if err := models.WriteSeal(p, seal); err != nil {
			t.Fatal(err)
		}
	}
}

// renderIndex writes an index compactly: name/version=STATE, with the kind
// of reason in parentheses.
func renderIndex(rows []RepositoryModel) string {
	var parts []string
	for _, r := range rows {
		s := r.Name + "/" + r.Version + "=" + r.State
		if k := reasonKind(r.Reason); k != "" {
			s += "(" + k + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func reasonKind(reason string) string {
	switch {
	case reason == "":
		return ""
	case strings.Contains(reason, "waiting for model.onnx"):
		return "waiting"
	case strings.Contains(reason, "failed"):
		return "failed"
	case strings.Contains(reason, "the version policy"):
		return "policy"
	case strings.Contains(reason, "unloaded by request"):
		return "unloaded"
	case strings.Contains(reason, "found since the last scan"):
		return "new"
	case strings.Contains(reason, "no such file"):
		return "missing"
	}
	return "other: " + reason
}

func mustIndex(t *testing.T, reg *Registry) []RepositoryModel {
	t.Helper()
	rows, err := reg.Index()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// repoStep changes the models folder, scans it, and checks the index, the
// z of served versions ("name/version": z) and reasons' text.
type repoStep struct {
	what   string
	do     func(t *testing.T, dir string)
	scan   scanMode
	want   string
	z      map[string]float64
	reason map[string]string // "name/version": a substring of its reason
}

// The scans of a models folder under each version policy: new, removed and
// changed versions; half-written files (with and without a seal) wait
// until complete; a corrupt file is refused and reported without
// disturbing what is served; a failed reload keeps the earlier file.
func TestRepositoryScan(t *testing.T) {
	needORT(t)
	put := func(name, version string, z float64) func(*testing.T, string) {
		return func(t *testing.T, dir string) { putVersion(t, dir, name, version, z) }
	}
	rm := func(path string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, path)); err != nil {
				t.Fatal(err)
			}
		}
	}
	full := zModel(t, 4)
	half := full[:len(full)/2]
	flipped := append([]byte(nil), full...)
	flipped[len(flipped)/2] ^= 1
	garbage := []byte("not an ONNX model")
	for _, tc := range []struct {
		name   string
		policy string
		setup  []string // name/version with z = version
		steps  []repoStep
	}{
		{
			name: "all: add, change, remove", policy: "all", setup: []string{"gauss/1", "gauss/2", "other/1"},
			steps: []repoStep{
				{what: "open", want: "gauss/1=READY gauss/2=READY other/1=READY", z: map[string]float64{"gauss/1": 1, "gauss/2": 2}},
				{what: "add 3", do: put("gauss", "3", 3), want: "gauss/1=READY gauss/2=READY gauss/3=READY other/1=READY", z: map[string]float64{"gauss/3": 3}},
				{what: "remove 1", do: rm("gauss/1"), want: "gauss/2=READY gauss/3=READY other/1=READY"},
				{what: "change 2", do: put("gauss", "2", 5), want: "gauss/2=READY gauss/3=READY other/1=READY", z: map[string]float64{"gauss/2": 5}},
				{what: "remove a model", do: rm("other"), want: "gauss/2=READY gauss/3=READY"},
				{what: "empty version folder", do: func(t *testing.T, dir string) { os.MkdirAll(filepath.Join(dir, "gauss", "7"), 0o755) },
					want: "gauss/2=READY gauss/3=READY gauss/7=UNAVAILABLE(missing)", reason: map[string]string{"gauss/7": "gauss/7/model.onnx: no such file"}},
				{what: "hidden and badly named folders are ignored", do: func(t *testing.T, dir string) {
					putVersion(t, dir, "gauss", ".8", 8)
					putVersion(t, dir, "gauss", "b@d", 8)
					putVersion(t, dir, ".hidden", "1", 8)
				}, want: "gauss/2=READY gauss/3=READY gauss/7=UNAVAILABLE(missing)"},
			},
		},
		{
			name: "latest:1", policy: "latest:1", setup: []string{"gauss/1", "gauss/2"},
			steps: []repoStep{
				{what: "open", want: "gauss/1=UNAVAILABLE(policy) gauss/2=READY"},
				{what: "add 3", do: put("gauss", "3", 3), want: "gauss/1=UNAVAILABLE(policy) gauss/2=UNAVAILABLE(policy) gauss/3=READY", z: map[string]float64{"gauss/2": math.NaN(), "gauss/3": 3}},
				{what: "remove 3: 2 serves again", do: rm("gauss/3"), want: "gauss/1=UNAVAILABLE(policy) gauss/2=READY", z: map[string]float64{"gauss/2": 2}},
				{what: "a name sorts after the numbers", do: put("gauss", "beta", 9), want: "gauss/1=UNAVAILABLE(policy) gauss/2=UNAVAILABLE(policy) gauss/beta=READY"},
			},
		},
		{
			name: "latest:2", policy: "latest:2", setup: []string{"gauss/1", "gauss/2", "gauss/10"},
			steps: []repoStep{
				{what: "open: 10 sorts after 2", want: "gauss/1=UNAVAILABLE(policy) gauss/2=READY gauss/10=READY"},
			},
		},
		{
			name: "specific:1,3", policy: "specific:3,1", setup: []string{"gauss/1", "gauss/2"},
			steps: []repoStep{
				{what: "open", want: "gauss/1=READY gauss/2=UNAVAILABLE(policy)"},
				{what: "add 3", do: put("gauss", "3", 3), want: "gauss/1=READY gauss/2=UNAVAILABLE(policy) gauss/3=READY"},
			},
		},
		{
			name: "latest:1, a half-written file without a seal", policy: "latest:1", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "half of 2", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", half, nil) },
					want: "gauss/1=READY gauss/2=UNAVAILABLE(waiting)", z: map[string]float64{"gauss/1": 1}},
				{what: "unchanged at the next scan: loaded, fails, 1 keeps serving", want: "gauss/1=READY gauss/2=UNAVAILABLE(failed)",
					z: map[string]float64{"gauss/1": 1}, reason: map[string]string{"gauss/2": "load failed: model gauss/2/model.onnx is not a loadable ONNX model"}},
				{what: "not retried while unchanged", want: "gauss/1=READY gauss/2=UNAVAILABLE(failed)"},
				{what: "completed with its seal: loaded at once", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", full, full) },
					want: "gauss/1=UNAVAILABLE(policy) gauss/2=READY", z: map[string]float64{"gauss/2": 4}},
			},
		},
		{
			name: "a half-written file whose seal is already there", policy: "all", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "half of 2, sealed for the whole", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", half, full) },
					want: "gauss/1=READY gauss/2=UNAVAILABLE(waiting)"},
				{what: "completed: matches its seal, loaded at once", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", full, nil) },
					want: "gauss/1=READY gauss/2=READY", z: map[string]float64{"gauss/2": 4}},
			},
		},
		{
			name: "an unsealed complete file", policy: "all", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "first seen: waits", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", full, nil) }, want: "gauss/1=READY gauss/2=UNAVAILABLE(waiting)"},
				{what: "unchanged: loaded (unsealed, with a warning)", want: "gauss/1=READY gauss/2=READY", z: map[string]float64{"gauss/2": 4}},
			},
		},
		{
			name: "a corrupt file", policy: "all", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "a flipped bit: does not match its seal", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", flipped, full) }, want: "gauss/1=READY gauss/2=UNAVAILABLE(waiting)"},
				{what: "refused once settled", want: "gauss/1=READY gauss/2=UNAVAILABLE(failed)", reason: map[string]string{"gauss/2": "does not match its seal"}},
			},
		},
		{
			name: "a changed file that fails keeps the earlier one serving", policy: "all", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "garbage, sealed", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "1", garbage, garbage) },
					want: "gauss/1=READY(failed)", z: map[string]float64{"gauss/1": 1}, reason: map[string]string{"gauss/1": "serving the earlier file; loading the changed one failed"}},
				{what: "a good file again", do: put("gauss", "1", 6), want: "gauss/1=READY", z: map[string]float64{"gauss/1": 6}},
			},
		},
		{
			name: "a rescan on request loads unsettled files at once", policy: "all", setup: []string{"gauss/1"},
			steps: []repoStep{
				{what: "unsealed 2, rescan", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "2", full, nil) }, scan: scanForce,
					want: "gauss/1=READY gauss/2=READY"},
				{what: "a bad file fails at once", do: func(t *testing.T, dir string) { putRaw(t, dir, "gauss", "3", garbage, nil) }, scan: scanForce,
					want: "gauss/1=READY gauss/2=READY gauss/3=UNAVAILABLE(failed)"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, nv := range tc.setup {
				name, v, _ := strings.Cut(nv, "/")
				var z float64
				fmt.Sscan(v, &z)
				putVersion(t, dir, name, v, z)
			}
			policy, err := ParseVersionPolicy(tc.policy)
			if err != nil {
				t.Fatal(err)
			}
			reg, err := OpenRepository(dir, RepositoryOptions{Load: LoadOptions{Threads: 1, Logger: quietLog}, Policy: policy})
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			for i, st := range tc.steps {
				if st.do != nil {
					st.do(t, dir)
				}
				if i > 0 || st.do != nil {
					reg.scan(st.scan)
				}
				rows := mustIndex(t, reg)
				if got := renderIndex(rows); got != st.want {
					t.Fatalf("step %q: index\n%s\nwant\n%s", st.what, got, st.want)
				}
				for nv, z := range st.z {
					name, v, _ := strings.Cut(nv, "/")
					if got := servedZ(reg, name, v); got != z && !(math.IsNaN(z) && math.IsNaN(got)) {
						t.Errorf("step %q: %s serves the file of z = %v, want %v", st.what, nv, got, z)
					}
				}
				for nv, want := range st.reason {
					for _, r := range rows {
						if r.Name+"/"+r.Version == nv && (!strings.Contains(r.Reason, want) || strings.Contains(r.Reason, dir)) {
							t.Errorf("step %q: %s reason %q, want it to contain %q and no absolute path", st.what, nv, r.Reason, want)
						}
					}
				}
				// the registry serves exactly the READY versions
				var ready []string
				for _, r := range rows {
					if r.State == StateReady {
						ready = append(ready, r.Name+"/"+r.Version)
					}
				}
				var served []string
				for _, m := range reg.Models() {
					served = append(served, m.Name+"/"+m.Version)
				}
				if strings.Join(ready, " ") != strings.Join(served, " ") {
					t.Errorf("step %q: READY %v, served %v", st.what, ready, served)
				}
			}
		})
	}
}

func TestParseVersionPolicy(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "all", want: "all"},
		{in: "latest:1", want: "latest:1"},
		{in: "latest:3", want: "latest:3"},
		{in: "specific:3,1,2,1", want: "specific:1,2,3"},
		{in: "specific:v2", want: "specific:v2"},
		{in: "", err: `want all, latest:N or specific:V1,V2,…, got ""`},
		{in: "latest", err: "want all, latest:N"},
		{in: "all:2", err: "want all, latest:N"},
		{in: "latest:0", err: `latest:N needs a whole number N in [1, 1024], got "0"`},
		{in: "latest:-1", err: "latest:N needs"},
		{in: "latest:x", err: "latest:N needs"},
		{in: "specific:", err: `specific: version "" must match`},
		{in: "specific:1,,2", err: `specific: version "" must match`},
		{in: "specific:../x", err: `specific: version "../x" must match`},
		{in: "newest:1", err: "want all, latest:N"},
	} {
		p, err := ParseVersionPolicy(tc.in)
		var fe *FieldError
		switch {
		case tc.err == "" && (err != nil || p.String() != tc.want):
			t.Errorf("%q: %v, %v; want %s", tc.in, p, err, tc.want)
		case tc.err != "" && (err == nil || !errors.As(err, &fe) || fe.Field != "version_policy" || !strings.Contains(fe.Msg, tc.err)):
			t.Errorf("%q: error %v; want version_policy: …%s…", tc.in, err, tc.err)
		}
	}
}

// closedModel reports whether m has been closed.
func closedModel(m *Model) bool {
	m.poolMu.Lock()
	defer m.poolMu.Unlock()
	return m.closed
}

// evalOnce evaluates m at one point: it fails (or crashes) on a closed model.
func evalOnce(t *testing.T, m *Model) {
	t.Helper()
	b, err := m.NewBatch(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	if err := m.Eval(b, nil); err != nil {
		t.Fatal(err)
	}
}

// A model taken out of service while a request holds it (unloaded,
// replaced by a changed file, or its registry closed) stays open until the
// request releases it, then is closed; one nobody holds is closed at once.
func TestRepositoryRefcount(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	putVersion(t, dir, "other", "1", 1)
	reg, err := OpenRepository(dir, RepositoryOptions{Load: LoadOptions{Threads: 1, Logger: quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()

	// unloaded while held
	held, err := reg.Get("gauss", "1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Unload("gauss"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get("gauss", ""); !errors.Is(err, ErrModelNotFound) {
		t.Fatalf("Get after Unload: %v", err)
	}
	if closedModel(held) {
		t.Fatal("unloaded model closed while a request holds it")
	}
	evalOnce(t, held)
	held.Release()
	if !closedModel(held) {
		t.Fatal("unloaded model not closed after its last release")
	}

	// loaded again, then replaced by a changed file while held
	if _, err := reg.Load("gauss"); err != nil {
		t.Fatal(err)
	}
	held, _ = reg.Get("gauss", "1")
	held2, _ := reg.Get("gauss", "1")
	putVersion(t, dir, "gauss", "1", 2)
	if err := reg.Rescan(); err != nil {
		t.Fatal(err)
	}
	if z := servedZ(reg, "gauss", "1"); z != 2 {
		t.Fatalf("after the change, z %v, want 2", z)
	}
	held.Release()
	if closedModel(held2) {
		t.Fatal("replaced model closed while a second request holds it")
	}
	evalOnce(t, held2)
	held2.Release()
	if !closedModel(held2) {
		t.Fatal("replaced model not closed after its last release")
	}

	// removed with nobody holding it: closed by the scan
	m, _ := reg.Get("other", "1")
	m.Release()
	os.RemoveAll(filepath.Join(dir, "other"))
	reg.scan(scanPoll)
	if !closedModel(m) {
		t.Fatal("removed model not closed")
	}

	// the registry closed while a model is held
	held, _ = reg.Get("gauss", "1")
	reg.Close()
	if closedModel(held) {
		t.Fatal("model closed by Registry.Close while held")
	}
	evalOnce(t, held)
	held.Release()
	if !closedModel(held) {
		t.Fatal("model not closed after the registry closed and it was released")
	}
}

// Get hands out a retained model even when scans replace it concurrently:
// every model a reader gets can be evaluated until it releases it.
func TestRegistryGetDuringSwaps(t *testing.T) {
	needORT(t)
	dir := t.TempDir()
	putVersion(t, dir, "gauss", "1", 1)
	reg, err := OpenRepository(dir, RepositoryOptions{Load: LoadOptions{Threads: 1, Logger: quietLog}})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fails []string
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				m, err := reg.Get("gauss", "")
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
					continue
				}
				b, err := m.NewBatch(1, 1)
				if err == nil {
					err = m.Eval(b, nil)
					b.Destroy()
				}
				if err == nil && closedModel(m) {
					err = errors.New("a held model was closed")
				}
				m.Release()
				if err != nil {
					mu.Lock()
					fails = append(fails, err.Error())
					mu.Unlock()
				}
			}
		}()
	}
	for i := 2; i < 12; i++ {
		putVersion(t, dir, "gauss", "1", float64(i))
		if err := reg.Rescan(); err != nil {
			t.Error(err)
		}
	}
	stop()
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("%d failures, first %s", len(fails), fails[0])
	}
	if z := servedZ(reg, "gauss", "1"); z != 11 {
		t.Errorf("z %v, want 11", z)
	}
}
