package serve

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// container is what the tests read of a manifest's container.
type container struct {
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe httpProbe `yaml:"readinessProbe"`
	LivenessProbe  httpProbe `yaml:"livenessProbe"`
}

// httpProbe is a container's HTTP probe.
type httpProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The deployment files under deploy/ agree with the binary: the container
// commands of the Kubernetes Deployment and the KServe ServingRuntime, the
// Dockerfile's ENTRYPOINT, run here with the model paths and the ONNX Runtime
// library replaced by local ones, start a server that answers the probe
// paths on the declared port; the HPA's metric is one the server exports;
// the Service and the InferenceService point at what exists.
func TestDeployManifests(t *testing.T) {
	needORT(t)
	var deployment struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/k8s/deployment.yaml", &deployment)
	var runtime struct {
		Spec struct {
			SupportedModelFormats []struct {
				Name string `yaml:"name"`
			} `yaml:"supportedModelFormats"`
			ProtocolVersions []string    `yaml:"protocolVersions"`
			Containers       []container `yaml:"containers"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/kserve/servingruntime.yaml", &runtime)
	var hpa struct {
		Spec struct {
			ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
			Metrics        []struct {
				Pods struct {
					Metric struct {
						Name string `yaml:"name"`
					} `yaml:"metric"`
				} `yaml:"pods"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/k8s/hpa.yaml", &hpa)
	var isvc struct {
		Spec struct {
			Predictor struct {
				Model struct {
					ModelFormat struct {
						Name string `yaml:"name"`
					} `yaml:"modelFormat"`
					Runtime         string `yaml:"runtime"`
					ProtocolVersion string `yaml:"protocolVersion"`
				} `yaml:"model"`
			} `yaml:"predictor"`
		} `yaml:"spec"`
	}
	readYAML(t, "deploy/kserve/inferenceservice.yaml", &isvc)
	if len(deployment.Spec.Template.Spec.Containers) != 1 || len(runtime.Spec.Containers) != 1 || len(hpa.Spec.Metrics) != 1 {
		t.Fatal("expected one container in each manifest and one HPA metric")
	}
	if m := isvc.Spec.Predictor.Model; m.Runtime != "jarzyn-serve" || m.ModelFormat.Name != runtime.Spec.SupportedModelFormats[0].Name ||
		m.ProtocolVersion != "v2" || !slices.Contains(runtime.Spec.ProtocolVersions, "v2") {
		t.Errorf("the InferenceService %+v does not match the ServingRuntime %+v", m, runtime.Spec)
	}
	if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != "jarzyn-serve" {
		t.Errorf("the HPA scales %+v", r)
	}
	docker, err := os.ReadFile(filepath.Join("..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindSubmatch(docker)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no exec-form ENTRYPOINT")
	}
	var entry []string
	if err := yaml.Unmarshal(m[1], &entry); err != nil {
		t.Fatal(err)
	}

	// a model repository and the files the commands name, here
	dir := t.TempDir()
	onnx := testGaussian.build(t)
	modelDir := filepath.Join(dir, "models", "gauss", "1")
	if err := os.MkdirAll(modelDir, 0o755); err != nil {
		t.Fatal(err)
	}
	modelPath := filepath.Join(modelDir, "model.onnx")
	if err := os.WriteFile(modelPath, onnx, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := models.WriteSeal(modelPath, onnx); err != nil {
		t.Fatal(err)
	}
	lib, err := ortlib.Find("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		c     container
		live  string
		local map[string]string
	}{
		{"k8s Deployment", deployment.Spec.Template.Spec.Containers[0], deployment.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Path,
			map[string]string{"/models": filepath.Join(dir, "models")}},
		{"KServe ServingRuntime", runtime.Spec.Containers[0], runtime.Spec.Containers[0].LivenessProbe.HTTPGet.Path,
			map[string]string{"/mnt/models/model.onnx": modelPath}},
		{"Dockerfile ENTRYPOINT", container{Command: entry[:1], Args: entry[1:]}, "/v2/health/live",
			map[string]string{"/models": filepath.Join(dir, "models")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.c.Command) != 1 || tc.c.Command[0] != "/opt/jarzyn/bin/jarzyn-serve" || len(tc.c.Args) == 0 || tc.c.Args[0] != "http" {
				t.Fatalf("command %v %v is not jarzyn-serve http", tc.c.Command, tc.c.Args)
			}
			if tc.name != "Dockerfile ENTRYPOINT" && (len(tc.c.Ports) != 1 || tc.c.Ports[0].ContainerPort != 8080 || tc.c.ReadinessProbe.HTTPGet.Path == "") {
				t.Fatalf("ports %+v, readiness probe %+v", tc.c.Ports, tc.c.ReadinessProbe)
			}
			port := freePort(t)
			args := slices.Clone(tc.c.Args)
			for i, a := range args {
				switch {
				case a == ":8080":
					args[i] = fmt.Sprintf("127.0.0.1:%d", port)
				case a == "/opt/jarzyn/lib/libonnxruntime.so.1":
					args[i] = lib
				case tc.local[a] != "":
					args[i] = tc.local[a]
				}
			}
			if !slices.Contains(tc.c.Args, ":8080") {
				t.Fatalf("args %v do not listen on :8080 (the container port)", tc.c.Args)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var stderr bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- Main(ctx, args, io.Discard, &stderr) }()
			base := fmt.Sprintf("http://127.0.0.1:%d", port)
			probes := []string{tc.live, "/v2/health/ready"}
			if p := tc.c.ReadinessProbe.HTTPGet.Path; p != "" {
				probes[1] = p
			}
			for _, p := range probes {
				if code := waitFor(t, base+p, done, &stderr); code != 200 {
					t.Errorf("GET %s: %d", p, code)
				}
			}
			resp, err := http.Get(base + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if name := hpa.Spec.Metrics[0].Pods.Metric.Name; !strings.Contains(string(metrics), "\n"+name+" ") && !strings.Contains(string(metrics), "\n"+name+"{") {
				t.Errorf("the HPA's metric %s is not in /metrics", name)
			}
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("exit %d after SIGTERM-like cancellation; stderr %s", code, stderr.String())
			}
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls url until it answers (or the server exits, or 10 s pass)
// and returns the status code.
func waitFor(t *testing.T, url string, done chan int, stderr *bytes.Buffer) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("the server exited with %d: %s", code, stderr.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 10 s", url)
	return 0
}
