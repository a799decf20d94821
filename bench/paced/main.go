// Command paced is the benchmarks' latency client: an open-loop HTTP/1.1 load generator that sends
// requests at a fixed rate over keep-alive connections and times each one from the instant it was
// due, so a server that falls behind is charged for the wait (no coordinated omission).
//
// One thread polls its non-blocking sockets with epoll in a busy loop, as wrk2 does: no garbage
// collector of note and no timer slack stand between a response and its timestamp. (A Node.js client
// on one core at tens of thousands of requests a second measured its own pauses as the server's
// latency; Go's own timers and network poller wake with millisecond granularity when idle.)
//
//	paced -port 8080 -rate 40000 -seconds 2 -connections 64 -requests requests.json
//
// requests.json is a JSON array of raw requests (each a complete HTTP/1.1 request, CRLFs included),
// sent in turn. It prints one JSON object: sent, completed, late (requests that found every connection
// busy and were sent later: their wait is in their latency), errors, statuses by code, and every
// latency in microseconds, sorted.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"syscall"
	"time"
)

type result struct {
	Sent        int            `json:"sent"`
	Completed   int            `json:"completed"`
	Late        int            `json:"late"`
	Errors      int            `json:"errors"`
	Statuses    map[string]int `json:"statuses"`
	LatenciesUs []float64      `json:"latenciesUs"`
	// Slow lists [due ms since the start, latency us] of each request slower than -slow-us (diagnostics).
	Slow [][2]float64 `json:"slow,omitempty"`
}

// conn is one keep-alive connection with at most one request in flight.
type conn struct {
	fd   int
	busy bool
	due  time.Duration // when the request in flight was due, since the start
	buf  []byte        // bytes of the response read so far
}

func main() {
	port := flag.Int("port", 0, "the server's port on 127.0.0.1")
	rate := flag.Float64("rate", 1000, "requests per second")
	seconds := flag.Float64("seconds", 2, "how long to send")
	connections := flag.Int("connections", 64, "keep-alive connections")
	requestsFile := flag.String("requests", "", "JSON array of raw requests")
	slowUs := flag.Float64("slow-us", 0, "also list every request slower than this, with when it was due (0: none)")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	runtime.LockOSThread()
	// No collection during the run: with one thread, a collection would take the time the loop needs
	// to stamp responses (seen as stalls of several ms). The run allocates little: latencies are
	// preallocated and responses parsed in place.
	debug.SetGCPercent(-1)

	var requests []string
	data, err := os.ReadFile(*requestsFile)
	if err == nil {
		err = json.Unmarshal(data, &requests)
	}
	if err != nil || len(requests) == 0 {
		fail(2, "cannot read requests from %q: %v", *requestsFile, err)
	}
	raw := make([][]byte, len(requests))
	for i, r := range requests {
		raw[i] = []byte(r)
	}

	epfd, err := syscall.EpollCreate1(0)
	if err != nil {
		fail(1, "epoll: %v", err)
	}
	conns := make([]*conn, *connections)
	byFd := map[int]*conn{}
	for i := range conns {
		fd, err := dial(*port)
		if err != nil {
			fail(1, "connect to 127.0.0.1:%d: %v", *port, err)
		}
		conns[i] = &conn{fd: fd, buf: make([]byte, 0, 16<<10)}
		byFd[fd] = conns[i]
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
		if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			fail(1, "epoll_ctl: %v", err)
		}
	}

	// Each connection carries one request before the clock starts: a new connection's first request
	// costs the server more than the rest, and a long-lived client (Envoy) has its connections open.
	for i, c := range conns {
		if err := warm(c, raw[i%len(raw)]); err != nil {
			fail(1, "warming up a connection: %v", err)
		}
	}

	total := int(*rate * *seconds)
	latencies := make([]time.Duration, 0, total)
	statuses := map[int]int{}
	var slow [][2]float64
	interval := float64(time.Second) / *rate
	deadline := time.Duration((*seconds + 10) * float64(time.Second))
	events := make([]syscall.EpollEvent, len(conns))
	chunk := make([]byte, 64<<10)
	sent, completed, late, errors, next := 0, 0, 0, 0, 0
	start := time.Now()
	for completed+errors < total {
		elapsed := time.Since(start)
		if elapsed > deadline {
			break
		}
		// Send every request that is due, each on an idle connection.
		for sent < total {
			due := time.Duration(float64(sent) * interval)
			if due > elapsed {
				break
			}
			var c *conn
			for i := 0; i < len(conns); i++ {
				candidate := conns[(next+i)%len(conns)]
				if !candidate.busy {
					c = candidate
					next = (next + i + 1) % len(conns)
					break
				}
			}
			if c == nil {
				late++ // every connection busy: sent once one is free, the wait counted
				break
			}
			c.busy, c.due = true, due
			if _, err := syscall.Write(c.fd, raw[sent%len(raw)]); err != nil {
				errors++
				c.busy = false
			}
			sent++
		}
		// Read whatever has arrived, without blocking.
		n, err := syscall.EpollWait(epfd, events, 0)
		if err != nil && err != syscall.EINTR {
			fail(1, "epoll_wait: %v", err)
		}
		for _, ev := range events[:n] {
			c := byFd[int(ev.Fd)]
			for {
				m, err := syscall.Read(c.fd, chunk)
				if m <= 0 || err != nil {
					break
				}
				c.buf = append(c.buf, chunk[:m]...)
				if m < len(chunk) {
					break
				}
			}
			for c.busy {
				status, used := parseResponse(c.buf)
				if used == 0 {
					break
				}
				latency := time.Since(start) - c.due
				latencies = append(latencies, latency)
				if *slowUs > 0 && float64(latency.Nanoseconds())/1000 > *slowUs {
					slow = append(slow, [2]float64{float64(c.due.Microseconds()) / 1000, float64(latency.Nanoseconds()) / 1000})
				}
				statuses[status]++
				completed++
				c.busy = false
				c.buf = append(c.buf[:0], c.buf[used:]...)
			}
		}
	}

	out := result{Sent: sent, Completed: completed, Late: late, Errors: errors, Statuses: map[string]int{}, Slow: slow}
	for code, n := range statuses {
		out.Statuses[strconv.Itoa(code)] = n
	}
	out.LatenciesUs = make([]float64, len(latencies))
	for i, l := range latencies {
		out.LatenciesUs[i] = float64(l.Nanoseconds()) / 1000
	}
	sort.Float64s(out.LatenciesUs)
	for _, c := range conns {
		syscall.Close(c.fd)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

// dial opens a non-blocking TCP connection to 127.0.0.1:port with Nagle's algorithm off.
func dial(port int) (int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, syscall.SetNonblock(fd, true)
}

// warm sends one request on c and waits for its response.
func warm(c *conn, request []byte) error {
	if _, err := syscall.Write(c.fd, request); err != nil {
		return err
	}
	chunk := make([]byte, 64<<10)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m, err := syscall.Read(c.fd, chunk)
		if m > 0 {
			c.buf = append(c.buf, chunk[:m]...)
			if _, used := parseResponse(c.buf); used > 0 {
				c.buf = append(c.buf[:0], c.buf[used:]...)
				return nil
			}
		} else if err != nil && err != syscall.EAGAIN {
			return err
		}
	}
	return fmt.Errorf("no answer within 10 s")
}

var (
	headerEnd     = []byte("\r\n\r\n")
	contentLength = []byte("content-length:")
)

// parseResponse returns the status of the complete response at the start of b and its length in
// bytes, or 0 bytes when the response is not complete yet. Bodies are framed by Content-Length.
// It allocates nothing.
func parseResponse(b []byte) (status int, used int) {
	end := bytes.Index(b, headerEnd)
	if end < 0 || len(b) < 12 {
		return 0, 0
	}
	status = int(b[9]-'0')*100 + int(b[10]-'0')*10 + int(b[11]-'0')
	length := 0
	for line := 0; line < end; {
		next := bytes.Index(b[line:end], []byte("\r\n"))
		stop := end
		if next >= 0 {
			stop = line + next
		}
		h := b[line:stop]
		if len(h) > len(contentLength) && bytes.EqualFold(h[:len(contentLength)], contentLength) {
			for _, d := range h[len(contentLength):] {
				if d >= '0' && d <= '9' {
					length = length*10 + int(d-'0')
				}
			}
		}
		if next < 0 {
			break
		}
		line = stop + 2
	}
	if len(b) < end+4+length {
		return 0, 0
	}
	return status, end + 4 + length
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "paced: "+format+"\n", args...)
	os.Exit(code)
}
