package svidhelper

import "math/rand/v2"

func randomJitter() float64 { return rand.Float64() }
