package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestServeGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for name, tc := range map[string]struct {
		env     map[string]string
		current int
		want    int
	}{
		"GOGC unset":         {env: nil, current: 300, want: serveGCPercent},
		"GOGC set":           {env: map[string]string{"GOGC": "150"}, current: 150, want: 150},
		"GOGC set to off":    {env: map[string]string{"GOGC": "off"}, current: -1, want: -1},
		"GOGC set but empty": {env: map[string]string{"GOGC": ""}, current: 100, want: 100},
	} {
		t.Run(name, func(t *testing.T) {
			// The runtime reads GOGC at start; stand in for it.
			debug.SetGCPercent(tc.current)
			got := setServeGCPercent(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if got != tc.want {
				t.Errorf("setServeGCPercent = %d, want %d", got, tc.want)
			}
			if now := debug.SetGCPercent(tc.current); now != tc.want {
				t.Errorf("collector runs at %d, want %d", now, tc.want)
			}
		})
	}
}

func TestHoldMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const limit = 256 << 20
	for name, tc := range map[string]struct {
		env   map[string]string
		start int64
		want  int64
	}{
		"GOMEMLIMIT unset": {env: nil, start: math.MaxInt64, want: math.MaxInt64},
		"GOMEMLIMIT set":   {env: map[string]string{"GOMEMLIMIT": "268435456"}, start: limit, want: limit * 9 / 10},
		"GOMEMLIMIT off":   {env: map[string]string{"GOMEMLIMIT": "off"}, start: math.MaxInt64, want: math.MaxInt64},
	} {
		t.Run(name, func(t *testing.T) {
			// The runtime reads GOMEMLIMIT at start; stand in for it.
			debug.SetMemoryLimit(tc.start)
			got := holdMemoryLimit(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			if now := debug.SetMemoryLimit(-1); got != tc.want || now != tc.want {
				t.Errorf("holdMemoryLimit = %d, runtime limit %d; want %d", got, now, tc.want)
			}
		})
	}
}
