package admissionjson

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"slices"

	"github.com/go-json-experiment/json/jsontext"
	corev1 "k8s.io/api/core/v1"
)

// The spliced patch's spec is the request's own bytes with the additions
// inserted: the appended elements before the closing bracket of their
// list, a list the original had as null or [] replaced whole, one it did
// not have added as a member before the closing brace of its object, the
// SPIFFE helper after the opening bracket of the init containers. Where
// those places are comes from a token scan of the raw spec (scanSpec).
//
// The additions were found in the typed Pod, so the splice is only right
// where the raw spec says what the typed Pod says. The decoder the Pod was
// read with accepts a repeated member name and keeps the last (or merges
// objects), as the API machinery does; after that, the typed containers
// need not be the raw ones. So any spec the scan does not read exactly as
// the typed Pod reads it (a repeated name anywhere in it, invalid UTF-8,
// lists of other lengths, a container that is not an object) is answered
// with the operation patch instead, which gives the same Pod by another
// road. An API server never sends such a spec: it encodes the Pod it
// decoded.

// errUnexpected is a spec the splice does not follow; the answer falls
// back to the operation patch.
var errUnexpected = errors.New("spec is not as the typed Pod reads it")

// rawList is where a list member is in the raw spec.
type rawList struct {
	present bool // the member is there
	array   bool // its value is an array, else null
	// start and end are its value's bytes, so end-1 is an array's closing
	// bracket.
	start, end int
	count      int // an array's elements
}

// length is the list's length as the typed Pod has it.
func (l rawList) length() int {
	if l.array {
		return l.count
	}
	return 0
}

// rawContainer is one element of a raw container list.
type rawContainer struct {
	object            bool
	end               int // where its closing brace is
	env, volumeMounts rawList
}

// rawSpec is where a raw spec's lists are.
type rawSpec struct {
	end                                 int // where its closing brace is
	volumes, initContainers, containers rawList
	initElems, containerElems           []rawContainer
}

// specScanner finds the lists in a raw spec with a token scan.
//
// Its decoder rejects invalid UTF-8, which an API server never sends, but
// lets repeated names pass: checking every object's names for repeats
// doubled the scan's time. The scanner checks them itself where they
// matter, in the spec and in its containers, the objects the operation
// patch has kube-apiserver decode and encode again (which keeps one of a
// repeated member); deeper objects reach the Pod as they were sent
// whichever patch is applied.
type specScanner struct {
	dec  *jsontext.Decoder
	spec []byte
	// names are the member names of the spec and of the container being
	// read, to find a repeated one.
	specNames, containerNames [][]byte
}

// scanSpec finds the lists in spec, whose typed lengths are in typed.
func scanSpec(spec []byte, typed *corev1.PodSpec) (*rawSpec, error) {
	sc := specScanner{dec: jsontext.NewDecoder(bytes.NewBuffer(spec), jsontext.AllowDuplicateNames(true)), spec: spec,
		specNames: make([][]byte, 0, 32), containerNames: make([][]byte, 0, 16)}
	s := &rawSpec{initElems: make([]rawContainer, 0, len(typed.InitContainers)),
		containerElems: make([]rawContainer, 0, len(typed.Containers))}
	if tok, err := sc.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil, errUnexpected
	}
	for {
		more, err := next(sc.dec, '}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
		name, err := sc.readName(&sc.specNames)
		if err != nil {
			return nil, err
		}
		switch string(name) {
		case "volumes":
			s.volumes, err = sc.scanList(nil)
		case "initContainers":
			s.initContainers, err = sc.scanList(&s.initElems)
		case "containers":
			s.containers, err = sc.scanList(&s.containerElems)
		default:
			_, err = sc.dec.ReadValue()
		}
		if err != nil {
			return nil, err
		}
	}
	s.end = int(sc.dec.InputOffset()) - 1
	if _, err := sc.dec.ReadToken(); err != io.EOF {
		return nil, errUnexpected // something after the spec
	}
	return s, nil
}

// next reports whether the object or array being read has another member
// or element; if not, it reads the closing delimiter.
func next(dec *jsontext.Decoder, closing jsontext.Kind) (bool, error) {
	if k := dec.PeekKind(); k != closing && k != 0 {
		return true, nil
	}
	// The closing delimiter, or the error PeekKind met.
	tok, err := dec.ReadToken()
	if err == nil && tok.Kind() != closing {
		err = errUnexpected
	}
	return false, err
}

// readName reads a member name, unescaped, and adds it to seen, the names
// of its object so far; a name already there is an error.
func (sc *specScanner) readName(seen *[][]byte) ([]byte, error) {
	v, err := sc.dec.ReadValue()
	if err != nil {
		return nil, err
	}
	// The spec's own bytes, which outlive the decoder's buffer.
	end := int(sc.dec.InputOffset())
	name := sc.spec[end-len(v)+1 : end-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		if name, err = jsontext.AppendUnquote(nil, v); err != nil {
			return nil, err
		}
	}
	for _, s := range *seen {
		if bytes.Equal(s, name) {
			return nil, errUnexpected
		}
	}
	*seen = append(*seen, name)
	return name, nil
}

// scanList reads a list member's value, null or an array, and when
// containers is not nil scans each element as a container.
func (sc *specScanner) scanList(containers *[]rawContainer) (rawList, error) {
	dec := sc.dec
	switch dec.PeekKind() {
	case 'n':
		if _, err := dec.ReadToken(); err != nil {
			return rawList{}, err
		}
		end := int(dec.InputOffset())
		return rawList{present: true, start: end - len("null"), end: end}, nil
	case '[':
	default:
		return rawList{}, errUnexpected // the typed decode would have failed
	}
	if _, err := dec.ReadToken(); err != nil {
		return rawList{}, err
	}
	l := rawList{present: true, array: true, start: int(dec.InputOffset()) - 1}
	for {
		more, err := next(dec, ']')
		if err != nil {
			return rawList{}, err
		}
		if !more {
			break
		}
		if containers == nil {
			_, err = dec.ReadValue()
		} else {
			var c rawContainer
			c, err = sc.scanContainer()
			*containers = append(*containers, c)
		}
		if err != nil {
			return rawList{}, err
		}
		l.count++
	}
	l.end = int(dec.InputOffset())
	return l, nil
}

// scanContainer reads one element of a container list.
func (sc *specScanner) scanContainer() (rawContainer, error) {
	dec := sc.dec
	if dec.PeekKind() != '{' {
		_, err := dec.ReadValue()
		return rawContainer{}, err
	}
	if _, err := dec.ReadToken(); err != nil {
		return rawContainer{}, err
	}
	c := rawContainer{object: true}
	sc.containerNames = sc.containerNames[:0]
	for {
		more, err := next(dec, '}')
		if err != nil {
			return rawContainer{}, err
		}
		if !more {
			break
		}
		name, err := sc.readName(&sc.containerNames)
		if err != nil {
			return rawContainer{}, err
		}
		switch string(name) {
		case "env":
			c.env, err = sc.scanList(nil)
		case "volumeMounts":
			c.volumeMounts, err = sc.scanList(nil)
		default:
			_, err = dec.ReadValue()
		}
		if err != nil {
			return rawContainer{}, err
		}
	}
	c.end = int(dec.InputOffset()) - 1
	return c, nil
}

// holds reports whether the raw lists have the typed Pod's lengths, so
// that element i of each is the typed element i.
func (s *rawSpec) holds(spec *corev1.PodSpec) bool {
	return s.volumes.length() == len(spec.Volumes) &&
		s.initContainers.length() == len(spec.InitContainers) && len(s.initElems) == len(spec.InitContainers) &&
		s.containers.length() == len(spec.Containers) && len(s.containerElems) == len(spec.Containers)
}

// find is where l's list is, and the end of the object holding it, where
// a missing list is added.
func (s *rawSpec) find(l *listAddition) (list rawList, objectEnd int, ok bool) {
	var containers []rawContainer
	switch l.list {
	case "volumes":
		list = s.volumes
	case "initContainers":
		list, containers = s.initContainers, s.initElems
	case "containers":
		list, containers = s.containers, s.containerElems
	default:
		return rawList{}, 0, false
	}
	if l.container < 0 {
		return list, s.end, true
	}
	if l.container >= len(containers) || !containers[l.container].object {
		return rawList{}, 0, false
	}
	c := &containers[l.container]
	switch l.field {
	case "env":
		return c.env, c.end, true
	case "volumeMounts":
		return c.volumeMounts, c.end, true
	}
	return rawList{}, 0, false
}

// An edit replaces spec[at:to) (inserts, when to is at) with what its kind
// writes of its list's elements.
type edit struct {
	at, to int
	kind   editKind
	list   *listAddition // nil for the helper
}

type editKind uint8

const (
	insertHelper   editKind = iota // "helper," after the opening bracket
	appendElements                 // ",element,..." before the closing bracket
	setList                        // "[element,...]" for null or []
	addMember                      // `,"name":[element,...]` before the closing brace
)

// splicedPatch is the one add of the whole spec, spliced, and the
// annotations' operations; false if spec cannot be spliced exactly. raw is
// where spec's lists are, or nil to scan spec for them.
func (a *additions) splicedPatch(dst, spec []byte, raw *rawSpec) ([]byte, bool) {
	if !a.helper && len(a.lists) == 0 {
		return a.operations(), true // nothing added to the spec
	}
	if spec == nil {
		return nil, false
	}
	if raw == nil {
		var err error
		if raw, err = scanSpec(spec, &a.original.Spec); err != nil {
			return nil, false
		}
	}
	if !raw.holds(&a.original.Spec) {
		return nil, false
	}
	edits, ok := a.edits(raw)
	if !ok {
		return nil, false
	}
	const prefix = `[{"op":"add","path":"/spec","value":`
	p := patchBuilder{buf: slices.Grow(dst[:0], len(prefix)+len(spec)+len(a.values)+32*len(edits)+512)}
	p.buf = append(p.buf, prefix...)
	at := 0
	for _, e := range edits {
		p.buf = a.write(append(p.buf, spec[at:e.at]...), e)
		at = e.to
	}
	p.buf = append(append(p.buf, spec[at:]...), '}')
	return p.finish(a.original.Annotations, a.mutated.Annotations), true
}

// edits are where each addition goes in raw, in the spec's order.
func (a *additions) edits(raw *rawSpec) ([]edit, bool) {
	edits := make([]edit, 0, len(a.lists)+1)
	if a.helper {
		// prepended: the init containers are a list with elements.
		at := raw.initContainers.start + 1
		edits = append(edits, edit{at: at, to: at, kind: insertHelper})
	}
	for i := range a.lists {
		l := &a.lists[i]
		list, objectEnd, ok := raw.find(l)
		if !ok {
			return nil, false
		}
		e := edit{list: l}
		switch {
		case l.from > 0:
			if !list.array || list.count != l.from {
				return nil, false
			}
			e.at, e.to, e.kind = list.end-1, list.end-1, appendElements
		case list.present:
			if list.array && list.count != 0 {
				return nil, false
			}
			e.at, e.to, e.kind = list.start, list.end, setList
		default:
			e.at, e.to, e.kind = objectEnd, objectEnd, addMember
		}
		edits = append(edits, e)
	}
	slices.SortStableFunc(edits, func(x, y edit) int { return cmp.Compare(x.at, y.at) })
	for i := 1; i < len(edits); i++ {
		if edits[i].at < edits[i-1].to {
			return nil, false
		}
	}
	return edits, true
}

// write appends what e puts in the spec.
func (a *additions) write(dst []byte, e edit) []byte {
	switch e.kind {
	case insertHelper:
		return append(append(dst, a.element(0)...), ',')
	case appendElements:
		return a.appendElements(separate(dst), e.list)
	case setList:
		return append(a.appendElements(append(dst, '['), e.list), ']')
	}
	name := e.list.list
	if e.list.container >= 0 {
		name = e.list.field
	}
	dst = append(appendString(separate(dst), name), ':', '[')
	return append(a.appendElements(dst, e.list), ']')
}

// separate appends a comma unless dst's last byte other than whitespace
// opens an object or an array.
func separate(dst []byte) []byte {
	if trimmed := bytes.TrimRight(dst, " \t\r\n"); len(trimmed) > 0 {
		if last := trimmed[len(trimmed)-1]; last == '{' || last == '[' {
			return dst
		}
	}
	return append(dst, ',')
}
