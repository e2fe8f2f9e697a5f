package bench

import "testing"

func TestPairedOrderSharesEveryMoment(t *testing.T) {
	const n, k = 12, 4
	order := pairedOrder(n, k)
	if len(order) != n*k {
		t.Fatalf("%d creates, want %d", len(order), n*k)
	}
	// place[target][position in the cycle] counts the creates there.
	var place [k][k]int
	for c := 0; c < n; c++ {
		seen := map[int]bool{}
		for p := 0; p < k; p++ {
			target := order[c*k+p]
			if seen[target] {
				t.Fatalf("cycle %d holds target %d twice: %v", c, target, order[c*k:c*k+k])
			}
			seen[target] = true
			place[target][p]++
		}
	}
	for target := range place {
		for p, got := range place[target] {
			if got != n/k {
				t.Errorf("target %d took place %d of the cycle %d times, want %d", target, p, got, n/k)
			}
		}
	}
}
