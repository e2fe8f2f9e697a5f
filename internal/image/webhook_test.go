package image

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// finalStage returns the instructions of the Dockerfile's last stage, by
// keyword, each with its arguments. Simple line parsing: the Dockerfile
// uses no continuation lines, and an unknown shape fails the test.
func finalStage(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stage map[string][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, args, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stage = map[string][]string{}
		}
		if stage == nil {
			t.Fatalf("%s: %q before any FROM", path, line)
		}
		if _, dup := stage[kw]; dup && (kw == "USER" || kw == "ENTRYPOINT" || kw == "CMD") {
			t.Fatalf("%s: two %s in the final stage; keep one", path, kw)
		}
		stage[kw] = append(stage[kw], strings.TrimSpace(args))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stage
}

func execForm(t *testing.T, kw, args string) []string {
	t.Helper()
	var v []string
	if err := json.Unmarshal([]byte(args), &v); err != nil {
		t.Fatalf("Dockerfile %s %s is not the exec (JSON) form: %v", kw, args, err)
	}
	return v
}

// TestDockerfileMatchesWebhookSpec holds the Dockerfile and make image to
// one image: what a docker build runs, and as whom, is what WebhookSpec
// (and so imagebuild's defaults) lays.
func TestDockerfileMatchesWebhookSpec(t *testing.T) {
	spec := WebhookSpec(BuildInfo{Version: "v1.0.0"}, nil)
	stage := finalStage(t, filepath.Join("..", "..", "Dockerfile"))

	if got := stage["USER"]; len(got) != 1 || got[0] != spec.User {
		t.Errorf("Dockerfile USER %v, image tool %q", got, spec.User)
	}
	if got := stage["ENTRYPOINT"]; len(got) != 1 {
		t.Errorf("Dockerfile ENTRYPOINT %v: want one", got)
	} else if diff := cmp.Diff([]string{spec.Entrypoint}, execForm(t, "ENTRYPOINT", got[0])); diff != "" {
		t.Errorf("Dockerfile ENTRYPOINT vs image tool (-tool +Dockerfile):\n%s", diff)
	}
	if got := stage["CMD"]; len(got) != 1 {
		t.Errorf("Dockerfile CMD %v: want one", got)
	} else if diff := cmp.Diff(spec.Cmd, execForm(t, "CMD", got[0])); diff != "" {
		t.Errorf("Dockerfile CMD vs image tool (-tool +Dockerfile):\n%s", diff)
	}
	// The one COPY of the final stage is the binary from the build stage.
	copies := stage["COPY"]
	if len(copies) != 1 {
		t.Fatalf("Dockerfile final stage COPY %v: want the binary only", copies)
	}
	f := strings.Fields(copies[0])
	if len(f) != 3 || !strings.HasPrefix(f[0], "--from=") {
		t.Fatalf("Dockerfile COPY %q: want --from=STAGE SRC DEST", copies[0])
	}
	if f[2] != spec.Entrypoint {
		t.Errorf("Dockerfile copies the binary to %s, image tool to %s", f[2], spec.Entrypoint)
	}
	// distroless/static, which the Dockerfile builds on, ships the CA
	// bundle at the path the image tool copies it to.
	if spec.CACerts != CACertsPath {
		t.Errorf("product image CA bundle from %q, want the build machine's %s", spec.CACerts, CACertsPath)
	}
	if from := stage["FROM"]; len(from) != 1 || !strings.HasPrefix(from[0], "gcr.io/distroless/static") {
		t.Errorf("Dockerfile final stage FROM %v: the image tool mirrors distroless/static; compare it again", from)
	}
}

// TestDeployNamesTheImage: the chart (and so deploy/, rendered from it) runs
// the image make image tags.
func TestDeployNamesTheImage(t *testing.T) {
	chart := filepath.Join("..", "..", "charts", "irsa-webhook")
	field := func(file, key string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(chart, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key+":"); ok {
				return strings.Trim(strings.TrimSpace(v), `"`)
			}
		}
		t.Fatalf("%s has no line %q", file, key+":")
		return ""
	}
	if got := field("values.yaml", "  repository"); got != WebhookRepository {
		t.Errorf("the chart's image.repository is %q, make image tags %q", got, WebhookRepository)
	}
	if got := field("Chart.yaml", "appVersion"); !strings.HasPrefix(got, "v") {
		t.Errorf("the chart's appVersion %q: want the release version, vX.Y.Z", got)
	}
	// make image takes its version from this same line.
	mk, err := os.ReadFile(filepath.Join("..", "..", "image.mk"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "charts/irsa-webhook/Chart.yaml") {
		t.Errorf("image.mk does not take the version from charts/irsa-webhook/Chart.yaml")
	}
}

func TestBuildInfoLabels(t *testing.T) {
	got := BuildInfo{Title: "t", Version: "v1", Revision: "abc", Created: testCreated}.Labels()
	want := map[string]string{
		"org.opencontainers.image.source":   Source,
		"org.opencontainers.image.created":  "2026-03-01T12:30:45Z",
		"org.opencontainers.image.title":    "t",
		"org.opencontainers.image.version":  "v1",
		"org.opencontainers.image.revision": "abc",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if l := (BuildInfo{Licenses: "Apache-2.0"}).Labels(); l["org.opencontainers.image.licenses"] != "Apache-2.0" || l["org.opencontainers.image.created"] != "1970-01-01T00:00:00Z" {
		t.Errorf("licenses and zero time: %v", l)
	}
}
