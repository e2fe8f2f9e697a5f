package chartdoc

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the chart README's values table")

var chartDir = filepath.Join("..", "..", "charts", "irsa-webhook")

// TestChartReadme: the README's table is the one values.yaml makes; run
// "make chart-docs" after changing a value or its comment.
func TestChartReadme(t *testing.T) {
	values, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := Parse(values)
	if err != nil {
		t.Fatal(err)
	}
	readmePath := filepath.Join(chartDir, "README.md")
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Splice(string(readme), Table(parsed))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(readmePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != string(readme) {
		t.Errorf("charts/irsa-webhook/README.md's values table is stale: run make chart-docs")
	}
}

func TestParse(t *testing.T) {
	got, err := Parse([]byte(`# File header.

# The image.
image:
  # Its tag. Empty: the
  # appVersion.
  tag: ""
  # Pull secrets.
  pullSecrets: []
# Replicas | count.
replicas: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Value{
		{Key: "image", Description: "The image."},
		{Key: "image.tag", Default: `""`, Description: "Its tag. Empty: the appVersion."},
		{Key: "image.pullSecrets", Default: `[]`, Description: "Pull secrets."},
		{Key: "replicas", Default: `2`, Description: "Replicas | count."},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("value %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	if table := Table(got); !strings.Contains(table, "| `replicas` | `2` | Replicas \\| count. |") {
		t.Errorf("table does not escape the pipe:\n%s", table)
	}
}

func TestParseRefusesAKeyWithoutAComment(t *testing.T) {
	_, err := Parse([]byte("# The image.\nimage:\n  tag: \"\"\n"))
	if err == nil || !strings.Contains(err.Error(), "image.tag") {
		t.Errorf("err = %v, want one naming image.tag", err)
	}
}
