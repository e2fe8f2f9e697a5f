// Package testpods renders the Pods the admission benchmarks and tests
// share, as the JSON an API server sends.
package testpods

import (
	"fmt"
	"strings"
)

// Bench renders a Pod with the given number of init containers and
// containers, each with envPerContainer env vars and two volume mounts, and
// three volumes. annotations is spliced into metadata as it is.
func Bench(annotations string, initContainers, containers, envPerContainer int) []byte {
	env := make([]string, envPerContainer)
	for i := range env {
		env[i] = fmt.Sprintf(`{"name":"VAR_%d","value":"value-%d"}`, i, i)
	}
	c := func(name string) string {
		return fmt.Sprintf(`{"name":%q,"image":"registry.example/%s:1.0","env":[%s],"volumeMounts":[{"name":"config","mountPath":"/etc/app"},{"name":"cache","mountPath":"/cache"}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}}`,
			name, name, strings.Join(env, ","))
	}
	list := func(prefix string, n int) string {
		cs := make([]string, n)
		for i := range cs {
			cs[i] = c(fmt.Sprintf("%s-%d", prefix, i))
		}
		return strings.Join(cs, ",")
	}
	return fmt.Appendf(nil, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"app-7d9c","namespace":"team-a","labels":{"app":"web"}%s},"spec":{"serviceAccountName":"app","initContainers":[%s],"containers":[%s],"volumes":[{"name":"config","configMap":{"name":"cfg"}},{"name":"cache","emptyDir":{}},{"name":"data","emptyDir":{}}]}}`,
		annotations, list("init", initContainers), list("app", containers))
}

// Typical has 2 containers, 1 init container, 5 env vars each and 3 volumes.
func Typical(annotations string) []byte { return Bench(annotations, 1, 2, 5) }

// Large has 20 containers with 200 env vars in all (10 each) and 3 volumes.
func Large(annotations string) []byte { return Bench(annotations, 0, 20, 10) }
