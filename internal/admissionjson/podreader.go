package admissionjson

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-webhook/irsa-webhook/internal/slab"
)

// reader reads an AdmissionReview and the Pod in it by hand, over the
// tokens of jsontext's decoder: it fills the typed Pod with what
// admittedPod describes, skipping every other member, and hands the few
// rare, nested values it keeps (valueFrom, nodeAffinity, os, a mount's
// propagation and options) to the JSON v2 decoder. Decoding admittedPod by
// reflection took a third of the handler's time and more under load, where
// its code and type caches are cold (docs/benchmarks.md), and the typed Pod
// was then built from it in a second copy; this reads the Pod once, into
// the Pod. FuzzDecode and TestDecodeEdgeCases hold it to admittedPod as
// the API machinery's decoder (sigs.k8s.io/json) reads it.
//
// Its rules are encoding/json's, as the API machinery's: names match
// case-sensitively after unescaping; invalid UTF-8 becomes U+FFFD; null
// sets a list, map or pointer to nil and leaves a string, bool or object
// alone; a member of the wrong type is an error. An object that repeats a
// member reads it again over the first, as the JSON v2 decoder with
// AllowDuplicateNames does; an API server never sends one.
type reader struct {
	dec   *jsontext.Decoder
	input []byte
	// mem is where the Pod being read is put.
	mem *podMemory
	// spec is where the last spec read is in the input (specSpan), and
	// layout where its lists are, in the input until the spec is read,
	// then in the spec; nil when the splice has to scan the spec itself
	// (see rawSpec.in).
	spec   specSpan
	layout *rawSpec
	// names are the member names of the spec and of the container being
	// read, to find a repeated one, as scanSpec does; repeated is whether
	// the spec being read has one.
	specNames, containerNames [][]byte
	repeated                  bool
	// name holds a member name that had to be unescaped.
	name [64]byte
	// short are strings read before, by this reader and for other
	// requests: env names and values, container names, mount paths and
	// label keys repeat from one Pod to the next, and making each anew
	// was a third of the reader's allocations.
	short shortStrings
	// Lists are read into these, then copied into lists of their length
	// (see array). No list holds a list of its own type, so one of each
	// is enough.
	scratch struct {
		containers []corev1.Container
		env        []corev1.EnvVar
		mounts     []corev1.VolumeMount
		volumes    []corev1.Volume
	}
}

// decodeOptions make the tokenizer, and the JSON v2 decoder for the values
// the reader hands it, read as the API machinery's decoder does: invalid
// UTF-8 becomes U+FFFD, and a repeated name is not an error.
var decodeOptions = jsonv2.JoinOptions(
	jsontext.AllowInvalidUTF8(true),
	jsontext.AllowDuplicateNames(true),
)

// readers are pooled: a decoder's state stacks are most of what it
// allocates.
var readers = sync.Pool{New: func() any { return &reader{dec: jsontext.NewDecoder(&noInput, decodeOptions)} }}

// noInput is what a pooled reader reads until it is reset: not the last
// request's buffer, which goes back to its own pool.
var noInput bytes.Buffer

// readValue reads the single JSON value in data with read, and nothing
// after it.
func readValue(data []byte, mem *podMemory, read func(*reader) error) error {
	r := readers.Get().(*reader)
	defer func() {
		r.dec.Reset(&noInput, decodeOptions)
		r.input, r.layout, r.mem = nil, nil, nil
		clear(r.specNames)
		clear(r.containerNames)
		readers.Put(r)
	}()
	r.dec.Reset(bytes.NewBuffer(data), decodeOptions)
	r.input, r.spec, r.layout, r.mem = data, specSpan{}, nil, mem
	if err := read(r); err != nil {
		return err
	}
	if _, err := r.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
		return err
	}
	return nil
}

// readReview reads data, an AdmissionReview, into review, its Pod into the
// review's memory (new memory if it has none).
func readReview(data []byte, review *Review) error {
	if review.mem == nil {
		review.mem = new(podMemory)
	}
	return readValue(data, review.mem, func(r *reader) error {
		return r.object("an AdmissionReview object", func(name []byte) error {
			switch string(name) {
			case "apiVersion":
				return r.str(&review.APIVersion)
			case "kind":
				return r.str(&review.Kind)
			case "request":
				return r.request(&review.Request)
			}
			return r.dec.SkipValue()
		})
	})
}

// readPod reads data, a Pod, into pod, and tells where its spec is and
// where the spec's lists are (nil: unknown).
func readPod(data []byte, pod *corev1.Pod) (specSpan, *rawSpec, error) {
	var at specSpan
	var layout *rawSpec
	err := readValue(data, new(podMemory), func(r *reader) error {
		err := r.pod(pod)
		at, layout = r.spec, r.layout
		return err
	})
	return at, layout, err
}

func (r *reader) request(req **Request) error {
	if r.dec.PeekKind() == 'n' {
		*req = nil
		return r.skip()
	}
	if *req == nil {
		*req = &Request{}
	}
	q := *req
	return r.object("an AdmissionRequest object", func(name []byte) error {
		switch string(name) {
		case "uid":
			return r.str((*string)(&q.UID))
		case "resource":
			return r.object("a resource object", func(name []byte) error {
				switch string(name) {
				case "group":
					return r.str(&q.Resource.Group)
				case "version":
					return r.str(&q.Resource.Version)
				case "resource":
					return r.str(&q.Resource.Resource)
				}
				return r.dec.SkipValue()
			})
		case "subResource":
			return r.str(&q.SubResource)
		case "namespace":
			return r.str(&q.Namespace)
		case "operation":
			return r.str((*string)(&q.Operation))
		case "object":
			return r.podObject(&q.Object)
		}
		return r.dec.SkipValue()
	})
}

// podObject reads the request's object as a Pod, keeping a Pod that does
// not read as its Err rather than failing the review (PodObject).
func (r *reader) podObject(o *PodObject) error {
	if r.dec.PeekKind() == 'n' {
		return r.skip()
	}
	*o = PodObject{Present: true} // a repeated object replaces the first
	depth := r.dec.StackDepth()
	r.spec, r.layout = specSpan{}, nil
	pod := r.mem.newPod()
	err := r.pod(pod)
	if err == nil {
		o.Pod, o.specAt, o.layout = pod, r.spec, r.layout
		return nil
	}
	// The read stops at the first error. After one in valid JSON, read
	// past the rest of the object; invalid JSON fails here again.
	for r.dec.StackDepth() > depth {
		if _, skipErr := r.dec.ReadToken(); skipErr != nil {
			return err
		}
	}
	o.Err = err
	return nil
}

func (r *reader) pod(pod *corev1.Pod) error {
	return r.object("a Pod object", func(name []byte) error {
		switch string(name) {
		case "metadata":
			m := &pod.ObjectMeta
			return r.object("an ObjectMeta object", func(name []byte) error {
				switch string(name) {
				case "name":
					return r.str(&m.Name)
				case "generateName":
					return r.str(&m.GenerateName)
				case "namespace":
					return r.str(&m.Namespace)
				case "labels":
					return r.stringMap(&m.Labels)
				case "annotations":
					return r.stringMap(&m.Annotations)
				}
				return r.dec.SkipValue()
			})
		case "spec":
			return r.podSpec(&pod.Spec)
		}
		return r.dec.SkipValue()
	})
}

func (r *reader) podSpec(s *corev1.PodSpec) error {
	from, object := r.dec.InputOffset(), r.dec.PeekKind() == '{'
	layout := r.mem.newLayout()
	r.specNames, r.repeated = r.specNames[:0], false
	err := r.object("a PodSpec object", func(name []byte) error {
		r.repeated = r.seen(&r.specNames, name) || r.repeated
		switch string(name) {
		case "serviceAccountName":
			return r.str(&s.ServiceAccountName)
		case "nodeSelector":
			return r.stringMap(&s.NodeSelector)
		case "affinity":
			return r.affinity(&s.Affinity)
		case "os":
			return r.v2(&s.OS)
		case "initContainers":
			return r.containers(&s.InitContainers, &layout.initContainers, &layout.initElems)
		case "containers":
			return r.containers(&s.Containers, &layout.containers, &layout.containerElems)
		case "volumes":
			return array(r, &r.scratch.volumes, &r.mem.volumes, &s.Volumes, &layout.volumes, "an array of volumes", r.volume)
		}
		return r.dec.SkipValue()
	})
	if err != nil {
		return err
	}
	r.spec = specSpan{decodes: r.spec.decodes + 1}
	r.layout = nil
	if object {
		r.spec.from, r.spec.to = from, r.dec.InputOffset()
		layout.end = int(r.spec.to) - 1
		if !r.repeated {
			r.layout = layout.in(r.spec.of(r.input))
		}
	}
	return nil
}

// in is the layout recorded in the input made relative to spec, the
// spec's bytes, which end where the layout's spec does; nil where the
// splice's own scan would read the spec otherwise: invalid UTF-8 and
// \u escapes, which its decoder rejects where they are not valid
// Unicode, are left to it. TestReaderLayoutIsScanned holds the rest to
// scanSpec.
func (l *rawSpec) in(spec []byte) *rawSpec {
	if spec == nil || !utf8.Valid(spec) || bytes.Contains(spec, []byte(`\u`)) {
		return nil
	}
	base := l.end + 1 - len(spec)
	l.end -= base
	for _, list := range []*rawList{&l.volumes, &l.initContainers, &l.containers} {
		list.move(base)
	}
	for _, elems := range [][]rawContainer{l.initElems, l.containerElems} {
		for i := range elems {
			c := &elems[i]
			if c.object {
				c.end -= base
			}
			c.env.move(base)
			c.volumeMounts.move(base)
		}
	}
	return l
}

// move makes a present list's place relative to base.
func (l *rawList) move(base int) {
	if l.present {
		l.start -= base
		l.end -= base
	}
}

// seen adds name to names, reporting whether it was there already. A
// name that had to be unescaped is copied: it is in the reader's scratch.
func (r *reader) seen(names *[][]byte, name []byte) bool {
	for _, n := range *names {
		if bytes.Equal(n, name) {
			return true
		}
	}
	if len(name) > 0 && &name[0] == &r.name[0] {
		name = bytes.Clone(name)
	}
	*names = append(*names, name)
	return false
}

// affinity keeps only the node affinity, which the Windows check reads.
func (r *reader) affinity(a **corev1.Affinity) error {
	if r.dec.PeekKind() == 'n' {
		*a = nil
		return r.skip()
	}
	if *a == nil {
		*a = &corev1.Affinity{}
	}
	return r.object("an Affinity object", func(name []byte) error {
		if string(name) == "nodeAffinity" {
			return r.v2(&(*a).NodeAffinity)
		}
		return r.dec.SkipValue()
	})
}

// containers reads a container list, noting where it is in at and where
// each container's lists are in elems.
func (r *reader) containers(list *[]corev1.Container, at *rawList, elems *[]rawContainer) error {
	return array(r, &r.scratch.containers, &r.mem.containers, list, at, "an array of containers", func(c *corev1.Container) error {
		raw := rawContainer{object: r.dec.PeekKind() == '{'}
		r.containerNames = r.containerNames[:0]
		err := r.object("a Container object", func(name []byte) error {
			r.repeated = r.seen(&r.containerNames, name) || r.repeated
			switch string(name) {
			case "name":
				return r.str(&c.Name)
			case "restartPolicy":
				return r.v2(&c.RestartPolicy)
			case "env":
				return array(r, &r.scratch.env, &r.mem.env, &c.Env, &raw.env, "an array of env vars", r.envVar)
			case "volumeMounts":
				return array(r, &r.scratch.mounts, &r.mem.mounts, &c.VolumeMounts, &raw.volumeMounts, "an array of volume mounts", r.volumeMount)
			}
			return r.dec.SkipValue()
		})
		if raw.object {
			raw.end = int(r.dec.InputOffset()) - 1
		}
		*elems = append(*elems, raw)
		return err
	})
}

func (r *reader) envVar(e *corev1.EnvVar) error {
	return r.object("an EnvVar object", func(name []byte) error {
		switch string(name) {
		case "name":
			return r.str(&e.Name)
		case "value":
			return r.str(&e.Value)
		case "valueFrom":
			return r.v2(&e.ValueFrom)
		}
		return r.dec.SkipValue()
	})
}

func (r *reader) volumeMount(m *corev1.VolumeMount) error {
	return r.object("a VolumeMount object", func(name []byte) error {
		switch string(name) {
		case "name":
			return r.str(&m.Name)
		case "readOnly":
			return r.boolean(&m.ReadOnly)
		case "recursiveReadOnly":
			return r.v2(&m.RecursiveReadOnly)
		case "mountPath":
			return r.str(&m.MountPath)
		case "subPath":
			return r.str(&m.SubPath)
		case "mountPropagation":
			return r.v2(&m.MountPropagation)
		case "subPathExpr":
			return r.str(&m.SubPathExpr)
		case "bindMountOptions":
			return r.v2(&m.BindMountOptions)
		}
		return r.dec.SkipValue()
	})
}

// volume keeps a volume's name, which is all Apply reads of it.
func (r *reader) volume(v *corev1.Volume) error {
	return r.object("a Volume object", func(name []byte) error {
		if string(name) == "name" {
			return r.str(&v.Name)
		}
		return r.dec.SkipValue()
	})
}

// array reads a list into *list, each element with elem: null sets it to
// nil, [] to an empty list; at, if not nil, is where the list is. The
// elements are read into scratch, which the pooled reader keeps, and
// copied into a list of their number in out: appending to a growing list
// allocated it three or four times.
func array[T any](r *reader, scratch *[]T, out *slab.Slab[T], list *[]T, at *rawList, want string, elem func(*T) error) error {
	switch r.dec.PeekKind() {
	case 'n':
		*list = nil
		if err := r.skip(); err != nil {
			return err
		}
		if at != nil {
			end := int(r.dec.InputOffset())
			*at = rawList{present: true, start: end - len("null"), end: end}
		}
		return nil
	case '[':
	default:
		return r.typeError(want)
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	start := int(r.dec.InputOffset()) - 1
	got := (*scratch)[:0]
	defer func() {
		clear(got) // hold no strings of this request
		*scratch = got[:0]
	}()
	for r.dec.PeekKind() != ']' {
		var zero T
		got = append(got, zero)
		if err := elem(&got[len(got)-1]); err != nil {
			return err
		}
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	*list = out.Take(len(got), 0) // not nil when empty
	copy(*list, got)
	if at != nil {
		*at = rawList{present: true, array: true, start: start, end: int(r.dec.InputOffset()), count: len(got)}
	}
	return nil
}

// v2 reads one rare, nested value with the JSON v2 decoder.
func (r *reader) v2(v any) error { return jsonv2.UnmarshalDecode(r.dec, v, decodeOptions) }

// object reads an object, calling member with each member's name
// (unescaped, valid until the next read), which reads or skips the value.
// null reads as nothing.
func (r *reader) object(want string, member func(name []byte) error) error {
	switch r.dec.PeekKind() {
	case 'n':
		return r.skip()
	case '{':
	default:
		return r.typeError(want)
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	for r.dec.PeekKind() != '}' {
		name, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		if err := member(r.unescapedName(name)); err != nil {
			return err
		}
	}
	_, err := r.dec.ReadToken()
	return err
}

// unescapedName is a member name without its quotes, unescaped if it has
// to be. Invalid UTF-8 is left as it is: it matches no name either way.
func (r *reader) unescapedName(quoted jsontext.Value) []byte {
	if bytes.IndexByte(quoted, '\\') < 0 {
		return quoted[1 : len(quoted)-1]
	}
	name, _ := jsontext.AppendUnquote(r.name[:0], quoted)
	return name
}

// str reads a string into *s; null leaves it alone.
func (r *reader) str(s *string) error {
	switch r.dec.PeekKind() {
	case 'n':
		return r.skip()
	case '"':
		v, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		*s = r.unquote(v)
		return nil
	}
	return r.typeError("a string")
}

// unquote is the string quoted holds, invalid UTF-8 replaced by U+FFFD.
func (r *reader) unquote(quoted jsontext.Value) string {
	if bytes.IndexByte(quoted, '\\') < 0 && utf8.Valid(quoted) {
		return r.short.of(quoted[1 : len(quoted)-1])
	}
	s, _ := jsontext.AppendUnquote(nil, quoted) // the error is the replaced UTF-8
	return string(s)
}

// shortStrings keeps the last string of up to maxShortString bytes seen
// for each of its slots, chosen by a hash of the bytes. A string shared
// between requests is safe: strings do not change.
type shortStrings [256]string

const maxShortString = 24

var shortSeed = maphash.MakeSeed()

// of is b as a string, the kept one when it is the same.
func (c *shortStrings) of(b []byte) string {
	if len(b) == 0 || len(b) > maxShortString {
		return string(b)
	}
	slot := &c[maphash.Bytes(shortSeed, b)%uint64(len(c))]
	if *slot != string(b) { // compared without making a string
		*slot = string(b)
	}
	return *slot
}

// boolean reads a bool into *b; null leaves it alone.
func (r *reader) boolean(b *bool) error {
	switch r.dec.PeekKind() {
	case 'n':
		return r.skip()
	case 't', 'f':
		tok, err := r.dec.ReadToken()
		if err == nil {
			*b = tok.Bool()
		}
		return err
	}
	return r.typeError("a boolean")
}

// stringMap reads an object of strings into *m, adding to a map already
// there; null sets it to nil, and a null value is the empty string.
func (r *reader) stringMap(m *map[string]string) error {
	switch r.dec.PeekKind() {
	case 'n':
		*m = nil
		return r.skip()
	case '{':
	default:
		return r.typeError("an object of strings")
	}
	if _, err := r.dec.ReadToken(); err != nil {
		return err
	}
	if *m == nil {
		*m = map[string]string{}
	}
	for r.dec.PeekKind() != '}' {
		key, err := r.dec.ReadValue()
		if err != nil {
			return err
		}
		k, v := r.unquote(key), ""
		if err := r.str(&v); err != nil {
			return err
		}
		(*m)[k] = v
	}
	_, err := r.dec.ReadToken()
	return err
}

// skip reads past the next value.
func (r *reader) skip() error { return r.dec.SkipValue() }

// typeError reports that the next value is not what was wanted, and reads
// past it; invalid JSON is reported as such.
func (r *reader) typeError(want string) error {
	at, kind := r.dec.StackPointer(), r.dec.PeekKind()
	if err := r.dec.SkipValue(); err != nil {
		return err
	}
	return fmt.Errorf("%s at %q, want %s", kindName(kind), at, want)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "null"
}
