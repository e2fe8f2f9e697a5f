package admissionjson

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/testcorpus"
	"github.com/irsa-webhook/irsa-webhook/internal/testpods"
)

var update = flag.Bool("update", false, "rewrite the seed corpus")

const testARN = "arn:aws:iam::111122223333:role/app-reader"

// webhookTestdata holds the handler's golden cases and review seeds: the
// Pods this package's tests run over are the ones the handler's are.
const webhookTestdata = "../../pkg/webhook/testdata"

func typicalPod(annotations string) []byte { return testpods.Typical(annotations) }
func largePod(annotations string) []byte   { return testpods.Large(annotations) }

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFuzzCorpus keeps FuzzDecode's seeds the handler's FuzzReview seeds,
// and FuzzSplice's those spliceSeeds lists: -update writes them, otherwise
// each must be here with the same content.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(webhookTestdata, "fuzz", "FuzzReview", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no FuzzReview seeds: %v", err)
	}
	seeds := map[string][]byte{}
	for _, f := range files {
		seeds[filepath.Base(f)] = readFile(t, f)
	}
	testcorpus.Check(t, "FuzzDecode", seeds, *update)
	testcorpus.Check(t, "FuzzSplice", spliceSeeds(), *update)
}

// applyOps applies a JSON patch as the API server does.
func applyOps(raw, ops []byte) ([]byte, error) {
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		return nil, err
	}
	return patch.Apply(raw)
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}
