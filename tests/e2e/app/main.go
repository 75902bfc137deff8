// The real tier's test program (scripts/e2e-real.sh): one static binary, built on the host
// and put into an image through the cluster's own docker, with three jobs:
//
//	app serve PORT    answer every HTTP request with a greeting naming this pod
//	app get URL       fetch URL (retrying for up to 60 s) and print the body
//	app resolve NAME  resolve NAME through the pod's resolv.conf and print the addresses
//	app proxy PORT    an HTTP proxy that forwards nothing: it prints each request line it
//	                  receives (CONNECT host:port, GET url) and answers 502
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: app serve PORT | app get URL | app resolve NAME | app proxy PORT")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2])
	case "get":
		err = retry(func() error { return get(os.Args[2]) })
	case "resolve":
		err = retry(func() error { return resolve(os.Args[2]) })
	case "proxy":
		err = proxy(os.Args[2])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "kdind-e2e:", err)
		os.Exit(1)
	}
}

func serve(port string) error {
	host, _ := os.Hostname()
	fmt.Printf("kdind-e2e: serving on :%s in %s\n", port, host)
	return http.ListenAndServe(":"+port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "kdind-e2e: hello from %s\n", host)
	}))
}

// get fetches url on a new connection each time, so that every attempt resolves the name
// again (a kept-alive connection would keep talking to whatever answered first).
func get(url string) error {
	request, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	var answered string
	dial := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			connection, err := dial.DialContext(ctx, network, address)
			if err == nil {
				answered = connection.RemoteAddr().String()
			}
			return connection, err
		},
	}
	client := http.Client{Timeout: 5 * time.Second, Transport: transport}
	response, err := client.Do(request)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return err
	}
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("%s (%s) answered %s", url, answered, response.Status)
	}
	fmt.Print(string(body))
	return nil
}

func resolve(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addresses, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return err
	}
	for _, address := range addresses {
		fmt.Printf("kdind-e2e: %s %s\n", name, address)
	}
	return nil
}

// retry runs attempt every 2 s until it succeeds or 60 s have passed.
func retry(attempt func() error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := attempt()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintln(os.Stderr, "kdind-e2e: retrying:", err)
		time.Sleep(2 * time.Second)
	}
}

// proxy records what a proxy client asks for; the requests themselves fail.
func proxy(port string) error {
	listener, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	fmt.Printf("kdind-e2e: proxy on :%s\n", port)
	for {
		connection, err := listener.Accept()
		if err != nil {
			return err
		}
		go func(connection net.Conn) {
			defer connection.Close()
			connection.SetDeadline(time.Now().Add(10 * time.Second))
			line, err := bufio.NewReader(connection).ReadString('\n')
			if err != nil {
				return
			}
			fmt.Printf("kdind-e2e: proxy saw %s from %s\n", strings.TrimSpace(line), connection.RemoteAddr())
			io.WriteString(connection, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}(connection)
	}
}
