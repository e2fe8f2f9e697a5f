package main

import (
	"strings"
	"testing"
)

func TestDoctorCommandValidates(t *testing.T) {
	// Bad flags are refused before any cluster is contacted.
	_, err := execute(t, "doctor", "--namespace", "Bad_NS", "--issuer", "http://x", "-o", "yaml")
	if err == nil {
		t.Fatal("accepted bad flags")
	}
	for _, want := range []string{"--namespace:", "--service-account: is required", "--issuer:", "--output:"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
