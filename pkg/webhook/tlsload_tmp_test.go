package webhook

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/irsa-webhook/irsa-webhook/internal/testcerts"
)

func TestTLSLoadTmp(t *testing.T) {
	quietFramework()
	s := startServer(t, testcerts.ECDSA, staticServiceAccounts{"team-a/app": {"eks.amazonaws.com/role-arn": testARN}})
	body := reviewBody(t, "uid-1", typicalPod(""))
	s.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	done := make(chan struct{})
	for w := 0; w < 16; w++ {
		go func() {
			for i := 0; i < 3000; i++ {
				resp, err := s.client.Post(s.url, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- struct{}{}
		}()
	}
	for w := 0; w < 16; w++ {
		<-done
	}
}
