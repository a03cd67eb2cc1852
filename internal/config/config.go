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
	"os"
	"reflect"
	"sort"
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
	if err := v.Unmarshal(out); err != nil {
		return fmt.Errorf("config %s: %w", src, err)
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
