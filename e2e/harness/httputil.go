package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

func getBody(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("get %s: status %d: %.200s", url, resp.StatusCode, body)
	}
	return body, nil
}

func httpOK(ctx context.Context, c *http.Client, url string) error {
	_, err := getBody(ctx, c, url)
	return err
}
