// Package config loads typed configuration structs with viper: defaults (the
// struct's own values) < YAML file < JARZYN_* environment variables <
// key=value overrides. Keys are the structs' mapstructure tags joined by dots;
// an unknown key in the file or in an override is a *KeyError naming the key
// and the file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// KeyError is a configuration key that is unknown or whose value is refused.
// Load returns one for an unknown key; validators (train.Config.Validate)
// return one for a bad value, and the loader fills in File.
type KeyError struct {
	// Key is the dotted key as a YAML file, JARZYN_* variable or --set names
	// it: "walkers.n", "optimizer.group_lr.w0", "data.teacher.masses[0]".
	Key string
	// File is the config file the configuration came from ("defaults" when
	// there was none); empty when not known.
	File string
	// Msg says what is wrong, as a predicate of the key: "is unknown",
	// "must be > 0, got -3".
	Msg string
}

func (e *KeyError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("config: key %q %s", e.Key, e.Msg)
	}
	return fmt.Sprintf("config %s: key %q %s", e.File, e.Key, e.Msg)
}

// Errorf returns a *KeyError for key with the message format, a.
func Errorf(key, format string, a ...any) error {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, a...)}
}

// InFile sets the File of err's KeyError, if it has one without a file, and
// returns err.
func InFile(err error, file string) error {
	var ke *KeyError
	if errors.As(err, &ke) && ke.File == "" {
		ke.File = file
	}
	return err
}

// EnvPrefix is the prefix of environment overrides: walkers.n ↔ JARZYN_WALKERS_N.
const EnvPrefix = "JARZYN"

// Load fills out (a pointer to a struct already holding the defaults) from
// file (may be empty), the environment and sets ("key=value", value parsed as
// YAML). It returns the keys that the file, environment or sets changed.
func Load(file string, sets []string, out any) error {
	rv := reflect.ValueOf(out)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config: Load needs a pointer to a struct")
	}
	defaults := map[string]any{}
	open := map[string]bool{} // keys whose values are maps: any sub-key is allowed
	flatten("", rv.Elem(), defaults, open)

	v := viper.NewWithOptions(viper.KeyDelimiter("."))
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	src := "defaults"
	if file != "" {
		src = file
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("config: cannot read config file: %w", err)
		}
		var raw map[string]any
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return fmt.Errorf("config: %s is not valid YAML: %v", file, err)
		}
		if err := checkKeys("", raw, defaults, open, file); err != nil {
			return err
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("config: reading %s: %w", file, err)
		}
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	for _, s := range sets {
		k, val, ok := strings.Cut(s, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return fmt.Errorf("config: override %q must look like key=value", s)
		}
		if !known(k, defaults, open) {
			return &KeyError{Key: k, File: src, Msg: fmt.Sprintf("(--set %s) is unknown; known keys: %s", s, strings.Join(Keys(out), ", "))}
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(val), &parsed); err != nil {
			return fmt.Errorf("config: --set %s: value is not valid YAML: %v", s, err)
		}
		v.Set(k, parsed)
	}
	// strict types before decoding, whose weak conversions would turn 1.5
	// into 1 and 1e19 into a negative int
	if err := checkValues("", v.AllSettings(), rv.Elem().Type(), src); err != nil {
		return err
	}
	if err := v.Unmarshal(out); err != nil {
		return fmt.Errorf("config %s: %w", src, err)
	}
	return InFile(CheckFinite(out), src)
}

// checkValues checks the merged settings (nested maps keyed by mapstructure
// tags) against the struct type t: an integer field takes only an integral
// number in its type's range (or a string of one, from the environment), a
// float field only a finite number. Other values are left to the decoder.
func checkValues(prefix string, settings map[string]any, t reflect.Type, src string) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if isSquash(f) && f.Type.Kind() == reflect.Struct {
			if err := checkValues(prefix, settings, f.Type, src); err != nil {
				return err
			}
			continue
		}
		name := tagName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		if val, ok := settings[name]; ok {
			if err := checkValue(prefix+name, val, f.Type, src); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkValue(key string, val any, t reflect.Type, src string) error {
	if val == nil {
		return nil
	}
	bad := func(format string, a ...any) error {
		return &KeyError{Key: key, File: src, Msg: fmt.Sprintf(format, a...)}
	}
	rv := reflect.ValueOf(val)
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f, exact, ok := number(val)
		if !ok {
			return bad("must be an integer, got %v", describe(val))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) || (exact == nil && f != math.Trunc(f)) {
			return bad("must be an integer, got %v", describe(val))
		}
		lo, hi := intRange(t)
		if exact != nil {
			if exact.Cmp(lo) < 0 || exact.Cmp(hi) > 0 {
				return bad("must be an integer in [%v, %v], got %v", lo, hi, exact)
			}
		} else if f < bigFloat(lo) || f > bigFloat(hi) {
			return bad("must be an integer in [%v, %v], got %v", lo, hi, describe(val))
		}
	case reflect.Float32, reflect.Float64:
		f, _, ok := number(val)
		if ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return bad("must be a finite number, got %v", describe(val))
		}
	case reflect.Struct:
		if m, ok := val.(map[string]any); ok {
			return checkValues(key+".", m, t, src)
		}
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			for i := 0; i < rv.Len(); i++ {
				if err := checkValue(fmt.Sprintf("%s[%d]", key, i), rv.Index(i).Interface(), t.Elem(), src); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String {
			keys := rv.MapKeys()
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
			for _, k := range keys {
				if err := checkValue(key+"."+k.String(), rv.MapIndex(k).Interface(), t.Elem(), src); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// number reads a numeric setting: its float64 value, the exact integer when
// it is one (nil for a float), and false when it is no number at all.
// Strings (environment variables) are parsed.
func number(val any) (float64, *big.Int, bool) {
	switch x := val.(type) {
	case int:
		return float64(x), big.NewInt(int64(x)), true
	case int8:
		return float64(x), big.NewInt(int64(x)), true
	case int16:
		return float64(x), big.NewInt(int64(x)), true
	case int32:
		return float64(x), big.NewInt(int64(x)), true
	case int64:
		return float64(x), big.NewInt(x), true
	case uint:
		return float64(x), new(big.Int).SetUint64(uint64(x)), true
	case uint8:
		return float64(x), new(big.Int).SetUint64(uint64(x)), true
	case uint16:
		return float64(x), new(big.Int).SetUint64(uint64(x)), true
	case uint32:
		return float64(x), new(big.Int).SetUint64(uint64(x)), true
	case uint64:
		return float64(x), new(big.Int).SetUint64(x), true
	case float32:
		return float64(x), nil, true
	case float64:
		return x, nil, true
	case string:
		s := strings.TrimSpace(x)
		if n, ok := new(big.Int).SetString(s, 10); ok {
			f, _ := new(big.Float).SetInt(n).Float64()
			return f, n, true
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil || errors.Is(err, strconv.ErrRange) {
			return f, nil, true
		}
	}
	return 0, nil, false
}

// intRange is the range of an integer type.
func intRange(t reflect.Type) (lo, hi *big.Int) {
	bits := uint(t.Bits())
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return big.NewInt(0), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits), big.NewInt(1))
	}
	hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), bits-1), big.NewInt(1))
	return new(big.Int).Neg(new(big.Int).Add(hi, big.NewInt(1))), hi
}

func bigFloat(n *big.Int) float64 {
	f, _ := new(big.Float).SetInt(n).Float64()
	return f
}

func describe(val any) string {
	if s, ok := val.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(val)
}

// CheckFinite returns a *KeyError (File empty) naming the first float64 or
// float32 in the config struct behind v, in any field, slice or map, that is
// NaN or infinite; nil when there is none.
func CheckFinite(v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	return finite("", rv)
}

func finite(key string, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
			return &KeyError{Key: key, Msg: fmt.Sprintf("must be a finite number, got %v", f)}
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			k := key
			if !isSquash(f) {
				name := tagName(f)
				if name == "" {
					continue
				}
				if k != "" {
					k += "."
				}
				k += name
			}
			if err := finite(k, v.Field(i)); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := finite(fmt.Sprintf("%s[%d]", key, i), v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			if err := finite(fmt.Sprintf("%s.%v", key, k), v.MapIndex(k)); err != nil {
				return err
			}
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return finite(key, v.Elem())
		}
	}
	return nil
}

// Keys lists every known key of the struct behind out, sorted.
func Keys(out any) []string {
	m, open := map[string]any{}, map[string]bool{}
	flatten("", reflect.ValueOf(out).Elem(), m, open)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func known(k string, defaults map[string]any, open map[string]bool) bool {
	if _, ok := defaults[k]; ok {
		return true
	}
	for o := range open {
		if strings.HasPrefix(k, o+".") {
			return true
		}
	}
	return false
}

func checkKeys(prefix string, raw map[string]any, defaults map[string]any, open map[string]bool, file string) error {
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		full := strings.ToLower(prefix + k)
		if open[full] {
			continue
		}
		if sub, ok := raw[k].(map[string]any); ok {
			if _, leaf := defaults[full]; !leaf {
				if err := checkKeys(full+".", sub, defaults, open, file); err != nil {
					return err
				}
				continue
			}
		}
		if _, ok := defaults[full]; !ok {
			return &KeyError{Key: full, File: file, Msg: "is unknown"}
		}
	}
	return nil
}

func tagName(f reflect.StructField) string {
	t := f.Tag.Get("mapstructure")
	if t == "" || t == "-" {
		return ""
	}
	name, _, _ := strings.Cut(t, ",")
	return name
}

func isSquash(f reflect.StructField) bool {
	return strings.Contains(f.Tag.Get("mapstructure"), ",squash")
}

func flatten(prefix string, v reflect.Value, out map[string]any, open map[string]bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fv := v.Field(i)
		if isSquash(f) && fv.Kind() == reflect.Struct {
			flatten(prefix, fv, out, open)
			continue
		}
		name := tagName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		key := prefix + name
		switch fv.Kind() {
		case reflect.Struct:
			flatten(key+".", fv, out, open)
		case reflect.Map:
			open[key] = true
			out[key] = fv.Interface()
		default:
			out[key] = fv.Interface()
		}
	}
}

// ToMap converts a config struct to nested maps keyed by mapstructure tags,
// for writing the resolved configuration.
func ToMap(v any) map[string]any {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	out := map[string]any{}
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		fv := rv.Field(i)
		if isSquash(f) && fv.Kind() == reflect.Struct {
			for k, v := range ToMap(fv.Interface()) {
				out[k] = v
			}
			continue
		}
		name := tagName(f)
		if name == "" || !f.IsExported() {
			continue
		}
		if fv.Kind() == reflect.Struct {
			out[name] = ToMap(fv.Interface())
		} else {
			out[name] = fv.Interface()
		}
	}
	return out
}

// YAML renders a config struct as YAML.
func YAML(v any) ([]byte, error) {
	return yaml.Marshal(ToMap(v))
}
