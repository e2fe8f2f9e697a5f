package serving

import (
	"strings"
	"testing"
)

// Before Set, a wrapper's server is not ready and has no address; after,
// both are the server's own.
func TestCurrentBeforeAndAfterSet(t *testing.T) {
	var c Current
	if err := c.Ready("webhook", nil); err == nil || !strings.Contains(err.Error(), "webhook server has not started") {
		t.Errorf("before Set: Ready = %v, want 'webhook server has not started'", err)
	}
	if got := c.ListenAddr(); got != "" {
		t.Errorf("before Set: ListenAddr = %q, want empty", got)
	}
	s := &Server{Name: "inner"}
	c.Set(s)
	if err := c.Ready("webhook", nil); err == nil || !strings.Contains(err.Error(), "inner server has not started") {
		t.Errorf("after Set: Ready = %v, want the server's own answer", err)
	}
}
