package events_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"northd/internal/events"
	"northd/internal/events/memory"
)

func BenchmarkAppendEventFrame(b *testing.B) {
	ev := events.Event{ID: events.ID{Epoch: "3kq9v2mx0a1b", Seq: 123456}, Type: "alarm.raised", Time: time.Now(), Data: []byte(`{"level":"major","text":"fan failure in rack 7"}`)}
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = events.AppendEventFrame(buf[:0], &ev, "nms")
	}
}

// BenchmarkFanOut publishes batches of 100 events to streams read over
// loopback, and reports the events delivered per second (every stream
// gets every event).
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(strconv.Itoa(n)+"streams", func(b *testing.B) {
			const batch = 100
			total := b.N * batch
			// The log keeps every event: a stream the publishes outran
			// would otherwise read a reset and skip, and never count
			// them all.
			log := memory.New(memory.Options{Retention: total})
			o := hubOptions
			o.MaxStreams, o.MaxPerToken, o.Queue = n, n, 1<<30
			o.CacheEvents, o.CacheBytes = 16384, 32<<20
			h, _ := startHubB(b, log, o)
			done := make(chan int, n)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			for i := 0; i < n; i++ {
				client, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					b.Fatal(err)
				}
				server, err := ln.Accept()
				if err != nil {
					b.Fatal(err)
				}
				defer client.Close()
				st, err := h.Open(events.StreamSpec{Token: [16]byte{byte(i), byte(i >> 8)}, IP: ipA}, []byte("\n"))
				if err != nil {
					b.Fatal(err)
				}
				go st.Serve(server)
				go func() {
					r := bufio.NewReaderSize(client, 64<<10)
					got := 0
					for got < total {
						line, err := r.ReadSlice('\n')
						if err != nil && err != bufio.ErrBufferFull {
							break
						}
						if len(line) > 3 && line[0] == 'i' && line[1] == 'd' {
							got++
						}
					}
					done <- got
					io.Copy(io.Discard, client)
				}()
			}
			drafts := make([]events.Draft, batch)
			for i := range drafts {
				drafts[i] = events.Draft{Type: "t", Data: []byte(`{"level":"major","n":` + strconv.Itoa(i) + `}`)}
			}
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, _, err := log.Publish(context.Background(), "", drafts, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; i < n; i++ {
				if got := <-done; got != total {
					b.Fatalf("a stream got %d events, want %d", got, total)
				}
			}
			b.ReportMetric(float64(total*n)/time.Since(start).Seconds(), "events/s")
		})
	}
}
