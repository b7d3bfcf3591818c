package engine

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

func readSamples(b *testing.B) [][]byte {
	var srcs [][]byte
	for _, path := range samplePaths(b) {
		src, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		srcs = append(srcs, src)
	}
	return srcs
}

// BenchmarkCompileSamples compiles every sample playbook once per op.
func BenchmarkCompileSamples(b *testing.B) {
	srcs := readSamples(b)
	noTextCache(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, src := range srcs {
			if _, err := Compile("sample.yaml", src); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkValidate1000 validates 1,000 distinct playbooks per op (the
// samples repeated under distinct names, so no cache can help): the
// figure is the time `rapport validate` needs for 1,000 playbooks.
func BenchmarkValidate1000(b *testing.B) {
	samples := readSamples(b)
	srcs := make([][]byte, 1000)
	for i := range srcs {
		src := samples[i%len(samples)]
		nameEnd := bytes.IndexByte(src[bytes.Index(src, []byte("playbook:")):], '\n') + bytes.Index(src, []byte("playbook:"))
		srcs[i] = append([]byte(fmt.Sprintf("playbook: p%04d", i)), src[nameEnd:]...)
	}
	noTextCache(b)
	b.ReportAllocs()
	for b.Loop() {
		for _, src := range srcs {
			if _, err := Compile("p.yaml", src); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// noTextCache makes a benchmark compile every template text and rule, as
// for 1,000 playbooks that share nothing (the samples repeat the same
// texts and rules, which the caches would otherwise serve).
func noTextCache(b *testing.B) {
	clearCaches()
	cacheTexts, cacheRules = false, false
	b.Cleanup(func() { cacheTexts, cacheRules = true, true })
}

func clearCaches() {
	textCache.Clear()
	htmlCache.Clear()
	cacheCount.Store(0)
	ruleCache.Clear()
	ruleCount.Store(0)
}

// BenchmarkValidate1000Cached is BenchmarkValidate1000 with the rule and
// text caches on but emptied before each 1,000: the samples' repeated
// rules and placeholders are compiled once per 1,000.
func BenchmarkValidate1000Cached(b *testing.B) {
	samples := readSamples(b)
	srcs := make([][]byte, 1000)
	for i := range srcs {
		src := samples[i%len(samples)]
		start := bytes.Index(src, []byte("playbook:"))
		nameEnd := start + bytes.IndexByte(src[start:], '\n')
		srcs[i] = append([]byte(fmt.Sprintf("playbook: p%04d", i)), src[nameEnd:]...)
	}
	b.ReportAllocs()
	for b.Loop() {
		clearCaches()
		for _, src := range srcs {
			if _, err := Compile("p.yaml", src); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkValidate1000Parallel is the cold BenchmarkValidate1000 through
// CompileAll, as `rapport validate` runs it: on all CPUs.
func BenchmarkValidate1000Parallel(b *testing.B) {
	samples := readSamples(b)
	srcs, files := make([][]byte, 1000), make([]string, 1000)
	for i := range srcs {
		src := samples[i%len(samples)]
		start := bytes.Index(src, []byte("playbook:"))
		nameEnd := start + bytes.IndexByte(src[start:], '\n')
		srcs[i] = append([]byte(fmt.Sprintf("playbook: p%04d", i)), src[nameEnd:]...)
		files[i] = fmt.Sprintf("p%04d.yaml", i)
	}
	noTextCache(b)
	b.ReportAllocs()
	for b.Loop() {
		_, errs := CompileAll(files, srcs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkDecodePinnedSamples decodes the pinned plan of every sample
// once per op, without the decode cache: what a worker pays when it loads
// a journey whose plan no cached journey shares (rules compiled again from
// their source). It reports the pinned plans' size beside the sources'.
func BenchmarkDecodePinnedSamples(b *testing.B) {
	var pins [][]byte
	var srcBytes, pinBytes int
	for _, src := range readSamples(b) {
		p, err := Compile("sample.yaml", src)
		if err != nil {
			b.Fatal(err)
		}
		pin, err := Pin(p)
		if err != nil {
			b.Fatal(err)
		}
		pins = append(pins, pin)
		srcBytes, pinBytes = srcBytes+len(src), pinBytes+len(pin)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, pin := range pins {
			if _, err := decodePlan(pin); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(srcBytes)/float64(len(pins)), "source-B/plan")
	b.ReportMetric(float64(pinBytes)/float64(len(pins)), "pinned-B/plan")
}
