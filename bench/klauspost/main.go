// Single-core RS(10,4) throughput of klauspost/reedsolomon, the peer of bench/erasure-klauspost.bench.ts.
// Prints one JSON line: {"encodeMBps":..., "reconstructMBps":...} (10^6 bytes of data-shard input per
// second, median of the runs). Built with Debian's Go and golang-github-klauspost-reedsolomon-dev.
package main

import (
	"encoding/json"
	"flag"
	"os"
	"runtime"
	"sort"
	"time"

	"github.com/klauspost/reedsolomon"
)

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func main() {
	shardSize := flag.Int("shard", 1<<20, "bytes per shard")
	runs := flag.Int("runs", 21, "timed runs")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	k, m := 10, 4
	enc, err := reedsolomon.New(k, m, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		panic(err)
	}
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = make([]byte, *shardSize)
		if i < k {
			for j := range shards[i] {
				shards[i][j] = byte((j*31 + i*7 + 1) % 256)
			}
		}
	}
	data := float64(k * *shardSize)
	var encRates, recRates []float64
	for r := 0; r < *runs+2; r++ {
		t := time.Now()
		if err := enc.Encode(shards); err != nil {
			panic(err)
		}
		if r >= 2 {
			encRates = append(encRates, data/1e6/time.Since(t).Seconds())
		}
	}
	for r := 0; r < *runs+2; r++ {
		lost := make([][]byte, k+m)
		copy(lost, shards)
		for i := 0; i < 4; i++ {
			lost[i] = nil
		}
		t := time.Now()
		if err := enc.ReconstructData(lost); err != nil {
			panic(err)
		}
		if r >= 2 {
			recRates = append(recRates, data/1e6/time.Since(t).Seconds())
		}
	}
	// The same, with the lost shards' memory handed back for reuse (len 0, cap shardSize): klauspost
	// rebuilds into it instead of allocating.
	var reuseRates []float64
	spare := make([][]byte, 4)
	for i := range spare {
		spare[i] = make([]byte, *shardSize)
	}
	for r := 0; r < *runs+2; r++ {
		lost := make([][]byte, k+m)
		copy(lost, shards)
		for i := 0; i < 4; i++ {
			lost[i] = spare[i][:0]
		}
		t := time.Now()
		if err := enc.ReconstructData(lost); err != nil {
			panic(err)
		}
		if r >= 2 {
			reuseRates = append(reuseRates, data/1e6/time.Since(t).Seconds())
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]float64{"encodeMBps": median(encRates), "reconstructMBps": median(recRates), "reconstructReuseMBps": median(reuseRates)})
}
