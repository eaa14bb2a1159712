package leakproof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"time"
)

// Type is one type to probe, as the generated program lists them.
type Type struct {
	// Name is the type's name as reports print it, such as "oauthclient.Config".
	Name string
	// Type is the reflected type.
	Type reflect.Type
}

// Func is a constructor to probe: it is called with populated arguments
// and, when it succeeds, its first result is printed like a Type.
type Func struct {
	// Name is the function's name as reports print it.
	Name string
	// Fn is the function value.
	Fn any
	// Params are the parameter names, which decide what is secret.
	Params []string
}

// Finding is one leak: the printed form of a value of type Type (variant
// Variant, see Probe) through Verb showed the secrets planted at Leaks.
type Finding struct {
	Type    string   `json:"type"`
	Variant int      `json:"variant"`
	Verb    string   `json:"verb"`
	Leaks   []string `json:"leaks"`
}

// Summary counts what Probe did.
type Summary struct {
	// Printed counts the types and constructors whose values were printed.
	Printed int `json:"printed"`
	// Skipped names the types that cannot be built by reflection
	// (interfaces, functions, channels).
	Skipped []string `json:"skipped"`
	// FuncsCalled counts constructors called successfully; FuncsSkipped
	// names those that took no secret; FuncsFailed those that took one
	// but failed with every argument set tried.
	FuncsCalled  int      `json:"funcs_called"`
	FuncsSkipped []string `json:"funcs_skipped"`
	FuncsFailed  []string `json:"funcs_failed"`
}

// Line is one line of Probe's output: a Finding or, last, the Summary.
type Line struct {
	Finding *Finding `json:"finding,omitempty"`
	Summary *Summary `json:"summary,omitempty"`
}

// Verbs are the fmt verbs every value is printed with.
var Verbs = []string{"%v", "%+v", "%#v", "%s", "%q", "%x"}

// ctorTimeout bounds one constructor call.
const ctorTimeout = 5 * time.Second

// Probe builds a populated value of every type (see the package
// documentation for what is planted where), prints it and a pointer to it
// with every verb of Verbs and through log/slog's JSON and text handlers,
// and writes one JSON Line per leak to w, then the Summary. module is the
// import path of the module: only its types are used for interface fields
// and followed through pointers. A type with interface fields is built
// once per implementation, as variants 0, 1, … of it.
func Probe(w io.Writer, module string, types []Type, funcs []Func) error {
	keys, err := newKeySet()
	if err != nil {
		return err
	}
	p := &prober{module: module, keys: keys, enc: json.NewEncoder(w)}
	for _, t := range types {
		switch t.Type.Kind() {
		case reflect.Interface, reflect.Func, reflect.Chan:
			p.sum.Skipped = append(p.sum.Skipped, t.Name)
			continue
		}
		p.concrete = append(p.concrete, t.Type)
	}
	for _, t := range types {
		switch t.Type.Kind() {
		case reflect.Interface, reflect.Func, reflect.Chan:
			continue
		}
		p.sum.Printed++
		p.variants(func(f *filler) (any, bool) {
			v := reflect.New(t.Type)
			f.fill(v.Elem(), t.Type.Name(), "", 0)
			return v.Interface(), true
		}, t.Name, true)
	}
	for _, fn := range funcs {
		called, secret := false, false
		p.variants(func(f *filler) (any, bool) {
			x, ok := callCtor(f, fn)
			secret = secret || len(f.book.plants) > 0
			if !ok {
				// Try again with optional strings left empty: a
				// constructor may reject a value it does not know.
				f.book.plants, f.empty = nil, true
				x, ok = callCtor(f, fn)
			}
			called = called || ok
			return x, ok
		}, fn.Name+"()", false)
		switch {
		case called:
			p.sum.FuncsCalled++
			p.sum.Printed++
		case secret:
			p.sum.FuncsFailed = append(p.sum.FuncsFailed, fn.Name)
		default:
			p.sum.FuncsSkipped = append(p.sum.FuncsSkipped, fn.Name)
		}
	}
	if p.err != nil {
		return p.err
	}
	return p.enc.Encode(Line{Summary: &p.sum})
}

// prober holds the state of one Probe run.
type prober struct {
	module   string
	keys     *keySet
	concrete []reflect.Type
	counter  int
	enc      *json.Encoder
	sum      Summary
	err      error
}

// variants builds values with build, once per variant, and prints each.
// build returns a value to print, or false to skip. With deref, a
// non-nil pointer is printed both as is and dereferenced.
func (p *prober) variants(build func(*filler) (any, bool), name string, deref bool) {
	for v := 0; ; v++ {
		f := &filler{module: p.module, types: p.concrete, keys: p.keys, variant: v, book: &book{next: &p.counter}}
		if x, ok := build(f); ok {
			p.printAll(name, v, x, f.book, deref)
		}
		if v+1 >= f.widest {
			return
		}
	}
}

// printAll prints x, and with deref what it points to if it is a non-nil
// pointer, every way, and reports the planted secrets found. Constructor
// results are printed as returned: a caller holding a *TokenSource does
// not print a copy of the struct.
func (p *prober) printAll(name string, variant int, x any, b *book, deref bool) {
	type form struct {
		label string
		x     any
	}
	var forms []form
	if rv := reflect.ValueOf(x); deref && rv.Kind() == reflect.Pointer && !rv.IsNil() {
		forms = append(forms, form{name, rv.Elem().Interface()}, form{"*" + name, x})
	} else {
		if reflect.ValueOf(x).Kind() == reflect.Pointer {
			name = "*" + name
		}
		forms = append(forms, form{name, x})
	}
	for _, fm := range forms {
		for _, verb := range Verbs {
			p.report(fm.label, variant, verb, b, render(func() string { return fmt.Sprintf(verb, fm.x) }))
		}
		p.report(fm.label, variant, "slog JSON", b, render(func() string {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("probe", slog.Any("v", fm.x))
			return buf.String()
		}))
		p.report(fm.label, variant, "slog text", b, render(func() string {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("probe", slog.Any("v", fm.x))
			return buf.String()
		}))
	}
}

// report writes a Finding if out shows any secret of b.
func (p *prober) report(label string, variant int, verb string, b *book, out string) {
	leaks := b.scan(out)
	if len(leaks) == 0 || p.err != nil {
		return
	}
	p.err = p.enc.Encode(Line{Finding: &Finding{Type: label, Variant: variant, Verb: verb, Leaks: leaks}})
}

// render runs print, turning a panic (which fmt and slog normally catch
// themselves) into its text, which is scanned like any other output.
func render(print func() string) (out string) {
	defer func() {
		if r := recover(); r != nil {
			out = fmt.Sprint("panic: ", r)
		}
	}()
	return print()
}

// callCtor calls fn with populated arguments. It reports false when no
// argument holds a secret, when fn fails or panics, or when it does not
// return within ctorTimeout.
func callCtor(f *filler, fn Func) (any, bool) {
	fv := reflect.ValueOf(fn.Fn)
	ft := fv.Type()
	n := ft.NumIn()
	if ft.IsVariadic() {
		n--
	}
	args := make([]reflect.Value, n)
	for i := range n {
		args[i] = reflect.New(ft.In(i)).Elem()
		name := fmt.Sprintf("arg%d", i)
		if i < len(fn.Params) {
			name = fn.Params[i]
		}
		f.fill(args[i], name, "("+name+")", 0)
	}
	if len(f.book.plants) == 0 || ft.NumOut() == 0 {
		return nil, false
	}
	done := make(chan []reflect.Value, 1)
	go func() {
		defer func() {
			if recover() != nil {
				done <- nil
			}
		}()
		done <- fv.Call(args)
	}()
	var out []reflect.Value
	select {
	case out = <-done:
	case <-time.After(ctorTimeout):
	}
	if out == nil {
		return nil, false
	}
	if last := out[len(out)-1]; last.Type() == typeError && !last.IsNil() {
		return nil, false
	}
	first := out[0]
	switch first.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		if first.IsNil() {
			return nil, false
		}
	}
	return first.Interface(), true
}
