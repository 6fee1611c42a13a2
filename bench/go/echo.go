// The Go row of securenet's scale benchmark (bench/benches/scale): a
// crypto/tls echo server, one goroutine per connection, what a Go user
// writes. The certificate and key come from SECURENET_BENCH_CERT and
// SECURENET_BENCH_KEY (PEM); it listens on a free loopback port and
// prints the port on its first line.
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	pair, err := tls.X509KeyPair([]byte(os.Getenv("SECURENET_BENCH_CERT")), []byte(os.Getenv("SECURENET_BENCH_KEY")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certificate:", err)
		os.Exit(2)
	}
	config := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	listener, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	for {
		conn, err := listener.Accept()
		if err != nil {
			// Out of descriptors: wait, as net/http's Server does.
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go echo(conn)
	}
}

func echo(conn net.Conn) {
	defer conn.Close()
	buf := make([]byte, 4096)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			return
		}
	}
}
