// Package boundedfile reads small files (keys, CA bundles) whose size a
// user controls, without letting a wrong path (a log, a device) fill memory.
package boundedfile

import (
	"fmt"
	"io"
	"os"
)

// Read returns the content of path, or an error if it holds more than
// limit bytes. Only limit+1 bytes are ever read.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}
