// The client-role baseline of bench/client-role.mjs: wireguard-go's tun/netstack (gVisor's TCP
// in userspace, the engine wireproxy and most Go tools dial through), with its default options,
// in either of two ways:
//
//	go-netstack -config wg0.conf -host 10.0.0.1 -bytes 209715200 [-timeout 60s]
//	go-netstack -config wg0.conf -host 10.0.0.1 -forward 127.0.0.1:0=10.0.0.1:19,127.0.0.1:0=10.0.0.1:9
//
// Direct: joins the tunnel from a wg-quick config, then runs bench/programs.mjs's client side
// against HOST in this process: one echo round trip (port 7: the handshake and first connection,
// untimed), a download (port 19: asks for BYTES, reads to EOF) and an upload (port 9: sends
// BYTES, half-closes, reads the server's {"bytes","sha256"}). Prints one JSON line; the driver
// checks the hashes.
//
// Forward: what wireproxy's TCP client tunnels do, for the same transfer client that goes
// through our --forward: each LISTEN=TARGET accepts local connections and relays each, both
// ways, to TARGET through the netstack (passing half-closes on: the upload needs them; wireproxy
// closes both ways at the first EOF). After the echo round trip it prints
// {"type":"up","listening":[{"to","address"}]} and serves until SIGINT or SIGTERM.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

const (
	echoPort     = 7
	uploadPort   = 9
	downloadPort = 19
	blockBytes   = 64 * 1024
)

type peerConfig struct {
	publicKey, presharedKey, endpoint, keepalive string
	allowedIPs                                   []string
}

type wgConfig struct {
	privateKey string
	addresses  []netip.Addr
	mtu        int
	peers      []peerConfig
}

// parseConfig reads the keys of a wg-quick file this program needs; others are ignored.
func parseConfig(text string) (*wgConfig, error) {
	cfg := &wgConfig{mtu: 1420}
	section := ""
	for number, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.SplitN(line, "#", 2)[0])
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "[") {
			section = strings.ToLower(line)
			if section == "[peer]" {
				cfg.peers = append(cfg.peers, peerConfig{})
			}
			continue
		}
		key, value, found := strings.Cut(line, "=")
		if !found {
			return nil, fmt.Errorf("line %d: expected KEY = VALUE", number+1)
		}
		key, value = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(value)
		list := func() []string {
			var items []string
			for _, item := range strings.Split(value, ",") {
				items = append(items, strings.TrimSpace(item))
			}
			return items
		}
		switch section + key {
		case "[interface]privatekey":
			cfg.privateKey = value
		case "[interface]address":
			for _, item := range list() {
				prefix, err := netip.ParsePrefix(item)
				if err != nil {
					return nil, fmt.Errorf("line %d: Address: %v", number+1, err)
				}
				cfg.addresses = append(cfg.addresses, prefix.Addr())
			}
		case "[interface]mtu":
			mtu, err := strconv.Atoi(value)
			if err != nil {
				return nil, fmt.Errorf("line %d: MTU: %v", number+1, err)
			}
			cfg.mtu = mtu
		case "[peer]publickey":
			cfg.peers[len(cfg.peers)-1].publicKey = value
		case "[peer]presharedkey":
			cfg.peers[len(cfg.peers)-1].presharedKey = value
		case "[peer]endpoint":
			cfg.peers[len(cfg.peers)-1].endpoint = value
		case "[peer]allowedips":
			cfg.peers[len(cfg.peers)-1].allowedIPs = list()
		case "[peer]persistentkeepalive":
			cfg.peers[len(cfg.peers)-1].keepalive = value
		}
	}
	if cfg.privateKey == "" || len(cfg.addresses) == 0 || len(cfg.peers) == 0 {
		return nil, errors.New("the config needs PrivateKey, Address and a [Peer]")
	}
	return cfg, nil
}

// hexKey turns a wg-quick base64 key into the hex the UAPI wants.
func hexKey(name, base64Key string) (string, error) {
	key, err := base64.StdEncoding.DecodeString(base64Key)
	if err != nil || len(key) != 32 {
		return "", fmt.Errorf("%s is not a base64 32-byte key", name)
	}
	return hex.EncodeToString(key), nil
}

// uapi renders the config in wireguard-go's configuration protocol (IpcSet).
func uapi(cfg *wgConfig) (string, error) {
	var out strings.Builder
	private, err := hexKey("PrivateKey", cfg.privateKey)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&out, "private_key=%s\n", private)
	for _, peer := range cfg.peers {
		public, err := hexKey("PublicKey", peer.publicKey)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&out, "public_key=%s\n", public)
		if peer.presharedKey != "" {
			preshared, err := hexKey("PresharedKey", peer.presharedKey)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&out, "preshared_key=%s\n", preshared)
		}
		if peer.endpoint != "" {
			address, err := net.ResolveUDPAddr("udp", peer.endpoint)
			if err != nil {
				return "", fmt.Errorf("Endpoint: %v", err)
			}
			// Unmap: net.IP holds IPv4 in 16 bytes, which the bind would send from its IPv6 socket.
			endpoint := address.AddrPort()
			fmt.Fprintf(&out, "endpoint=%s\n", netip.AddrPortFrom(endpoint.Addr().Unmap(), endpoint.Port()))
		}
		if peer.keepalive != "" {
			fmt.Fprintf(&out, "persistent_keepalive_interval=%s\n", peer.keepalive)
		}
		for _, allowed := range peer.allowedIPs {
			fmt.Fprintf(&out, "allowed_ip=%s\n", allowed)
		}
	}
	return out.String(), nil
}

type transfer struct {
	Bytes        int64   `json:"bytes"`
	Ms           float64 `json:"ms"`
	Sha256       string  `json:"sha256"`
	ServerBytes  int64   `json:"serverBytes,omitempty"`
	ServerSha256 string  `json:"serverSha256,omitempty"`
}

// echoOnce makes the handshake and a first connection happen before anything is timed.
func echoOnce(ctx context.Context, tnet *netstack.Net, host netip.Addr) error {
	c, err := tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(host, echoPort))
	if err != nil {
		return fmt.Errorf("echo: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		return fmt.Errorf("echo: %v", err)
	}
	reply := make([]byte, 1)
	if _, err := io.ReadFull(c, reply); err != nil {
		return fmt.Errorf("echo: %v", err)
	}
	return nil
}

func download(ctx context.Context, tnet *netstack.Net, host netip.Addr, bytes int64) (*transfer, error) {
	c, err := tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(host, downloadPort))
	if err != nil {
		return nil, fmt.Errorf("download: %v", err)
	}
	defer c.Close()
	start := time.Now()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	if _, err := fmt.Fprintf(c, "%d\n", bytes); err != nil {
		return nil, fmt.Errorf("download: %v", err)
	}
	hash := sha256.New()
	got, err := io.CopyBuffer(hash, c, make([]byte, blockBytes))
	if err != nil {
		return nil, fmt.Errorf("download: after %d bytes: %v", got, err)
	}
	return &transfer{Bytes: got, Ms: since(start), Sha256: hex.EncodeToString(hash.Sum(nil))}, nil
}

func upload(ctx context.Context, tnet *netstack.Net, host netip.Addr, bytes int64) (*transfer, error) {
	c, err := tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(host, uploadPort))
	if err != nil {
		return nil, fmt.Errorf("upload: %v", err)
	}
	defer c.Close()
	start := time.Now()
	if deadline, ok := ctx.Deadline(); ok {
		c.SetDeadline(deadline)
	}
	block := make([]byte, blockBytes)
	rand.Read(block)
	hash := sha256.New()
	for sent := int64(0); sent < bytes; {
		chunk := block[:min(int64(len(block)), bytes-sent)]
		hash.Write(chunk)
		n, err := c.Write(chunk)
		sent += int64(n)
		if err != nil {
			return nil, fmt.Errorf("upload: after %d bytes: %v", sent, err)
		}
	}
	if err := c.CloseWrite(); err != nil {
		return nil, fmt.Errorf("upload: %v", err)
	}
	var reply struct {
		Bytes  int64  `json:"bytes"`
		Sha256 string `json:"sha256"`
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("upload: the server's reply: %v", err)
	}
	if err := json.Unmarshal(line, &reply); err != nil {
		return nil, fmt.Errorf("upload: bad reply %q", line)
	}
	return &transfer{Bytes: bytes, Ms: since(start), Sha256: hex.EncodeToString(hash.Sum(nil)), ServerBytes: reply.Bytes, ServerSha256: reply.Sha256}, nil
}

// forward serves each LISTEN=TARGET of specs until SIGINT or SIGTERM.
func forward(tnet *netstack.Net, specs string) error {
	var listening []map[string]string
	for _, spec := range strings.Split(specs, ",") {
		listen, targetText, found := strings.Cut(spec, "=")
		target, err := netip.ParseAddrPort(targetText)
		if !found || err != nil {
			return fmt.Errorf("-forward %q: expected LISTEN=IP:PORT", spec)
		}
		listener, err := net.Listen("tcp", listen)
		if err != nil {
			return err
		}
		defer listener.Close()
		listening = append(listening, map[string]string{"to": targetText, "address": listener.Addr().String()})
		go serve(listener, tnet, target)
	}
	line, _ := json.Marshal(map[string]any{"type": "up", "listening": listening})
	fmt.Println(string(line))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	return nil
}

func serve(listener net.Listener, tnet *netstack.Net, target netip.AddrPort) {
	for {
		client, err := listener.Accept()
		if err != nil {
			return
		}
		go func() {
			defer client.Close()
			upstream, err := tnet.DialContextTCPAddrPort(context.Background(), target)
			if err != nil {
				return
			}
			defer upstream.Close()
			done := make(chan struct{})
			go func() {
				relayHalf(upstream, client)
				close(done)
			}()
			relayHalf(client, upstream)
			<-done
		}()
	}
}

// relayHalf copies src to dst until src's EOF, then half-closes dst.
func relayHalf(dst, src net.Conn) {
	io.Copy(dst, src)
	if conn, ok := dst.(interface{ CloseWrite() error }); ok {
		conn.CloseWrite()
	}
}

func since(start time.Time) float64 {
	return float64(time.Since(start).Microseconds()) / 1000
}

func run() (map[string]any, error) {
	configPath := flag.String("config", "", "wg-quick config file")
	hostText := flag.String("host", "", "the server's tunnel address")
	bytes := flag.Int64("bytes", 0, "bytes to download and to upload")
	timeout := flag.Duration("timeout", 60*time.Second, "for the whole run")
	forwards := flag.String("forward", "", "LISTEN=IP:PORT,...: serve these forwards instead of transferring")
	verbose := flag.Bool("verbose", false, "wireguard-go's log on stderr")
	flag.Parse()
	host, err := netip.ParseAddr(*hostText)
	if err != nil || *configPath == "" || (*bytes <= 0 && *forwards == "") {
		return nil, errors.New("usage: go-netstack -config FILE -host IP (-bytes N [-timeout 60s] | -forward LISTEN=IP:PORT,...)")
	}
	text, err := os.ReadFile(*configPath)
	if err != nil {
		return nil, err
	}
	cfg, err := parseConfig(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", *configPath, err)
	}
	settings, err := uapi(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", *configPath, err)
	}
	tun, tnet, err := netstack.CreateNetTUN(cfg.addresses, nil, cfg.mtu)
	if err != nil {
		return nil, err
	}
	logLevel := device.LogLevelSilent
	if *verbose {
		logLevel = device.LogLevelVerbose
	}
	dev := device.NewDevice(tun, conn.NewDefaultBind(), device.NewLogger(logLevel, ""))
	defer dev.Close()
	if err := dev.IpcSet(settings); err != nil {
		return nil, err
	}
	if err := dev.Up(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := echoOnce(ctx, tnet, host); err != nil {
		return nil, err
	}
	if *forwards != "" {
		return nil, forward(tnet, *forwards)
	}
	down, err := download(ctx, tnet, host, *bytes)
	if err != nil {
		return nil, err
	}
	up, err := upload(ctx, tnet, host, *bytes)
	if err != nil {
		return nil, err
	}
	return map[string]any{"download": down, "upload": up}, nil
}

func main() {
	result, err := run()
	if err == nil && result == nil {
		return // a forward, stopped
	}
	if err != nil {
		result = map[string]any{"error": err.Error()}
	}
	line, _ := json.Marshal(result)
	fmt.Println(string(line))
	if err != nil {
		os.Exit(1)
	}
}
