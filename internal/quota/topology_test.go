package quota

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterPort finds a free 127.0.0.1 port whose cluster bus port (+10000)
// is free too.
func clusterPort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 100; i++ {
		p := freePort(t)
		if p+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// TestCluster: three masters in a real Redis Cluster (redis-cli --cluster
// create), reached as the documented ACL user. Each tenant's keys hash to
// one slot, so its script runs on one shard; tenants spread over the
// shards; two agents hold a plan exactly.
func TestCluster(t *testing.T) {
	var addrs []string
	var nodes []*redisServer
	for i := 0; i < 3; i++ {
		p := clusterPort(t)
		nodes = append(nodes, startRedis(t, "--port", strconv.Itoa(p), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000"))
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redis-cli not found (%v): install redis-tools (a dependency of redis-server)", err)
	}
	out, err := exec.Command(cli, append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	eventually(t, "the cluster to be ok", func() bool {
		for _, n := range nodes {
			if !strings.Contains(n.do("CLUSTER", "INFO").(string), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	// The agents log in as the ACL user of docs/fleet.md, plus the one
	// command Cluster needs.
	const prefix = "signer:quota:"
	pwFile := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pwFile, []byte("cluster-test-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.do(toArgs("ACL SETUSER signer-agent reset on >cluster-test-password ~" + prefix + "* resetchannels " + aclCommands + " +cluster|slots")...)
	}
	open := func() *Store {
		cfg := storeOpts(nodes[0], prefix)
		cfg.Redis.Addr, cfg.Redis.ClusterAddrs = "", addrs
		cfg.Redis.Username, cfg.Redis.PasswordFile = "signer-agent", pwFile
		return openStore(t, cfg)
	}
	agents := []*Store{open(), open()}
	p := Plan{Name: "team", ArtifactsPerDay: 10, Concurrency: 50, QPS: 1000, Burst: 100}
	tenants := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"}
	var admitted, exhausted atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2*15*len(tenants); i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := agents[i%2]
			tk, err := a.AdmitN(context.Background(), tenants[(i/2)%len(tenants)], p, 1, 1)
			switch {
			case err == nil:
				admitted.Add(1)
				tk.Commit()
			case errors.Is(err, ErrExhausted):
				exhausted.Add(1)
			default:
				t.Errorf("admit: %v (%s)", err, a.Status().Err)
			}
		}(i)
	}
	wg.Wait()
	if want := int64(10 * len(tenants)); admitted.Load() != want || exhausted.Load() != int64(2*15*len(tenants))-want {
		t.Fatalf("admitted %d, exhausted %d; want %d admitted", admitted.Load(), exhausted.Load(), want)
	}
	for _, a := range agents {
		waitSettled(t, a)
		if a.Mode() != ModeShared {
			t.Fatalf("mode %s: %s", a.Mode(), a.Status().Err)
		}
	}
	// The tenants' keys are on more than one shard, each tenant's on one.
	shards := map[int]bool{}
	for _, tenant := range tenants {
		k := keysFor(prefix, tenant)
		owner := -1
		for i, n := range nodes {
			has := n.owns(k.day) && n.do("EXISTS", k.day).(int64) == 1
			if has && owner >= 0 {
				t.Fatalf("tenant %s on two shards", tenant)
			}
			if has {
				owner = i
			}
		}
		if owner < 0 {
			t.Fatalf("tenant %s has no day key on any shard", tenant)
		}
		if !nodes[owner].owns(k.rate) || !nodes[owner].owns(k.leases) {
			t.Fatalf("tenant %s: keys in more than one slot", tenant)
		}
		if nodes[owner].do("ZCARD", k.leases).(int64) != 0 {
			t.Fatalf("tenant %s: leases left", tenant)
		}
		shards[owner] = true
	}
	if len(shards) < 2 {
		t.Fatalf("%d tenants all on one shard", len(tenants))
	}
}

// owns reports whether a cluster node serves key's slot (a MOVED answer
// says it does not).
func (r *redisServer) owns(key string) bool {
	r.t.Helper()
	c := r.admin()
	defer c.Close()
	err := c.Do(context.Background(), "EXISTS", key).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "MOVED") {
		r.t.Fatalf("EXISTS %s: %v", key, err)
	}
	return err == nil
}

// startSentinel runs redis-server in Sentinel mode watching master at
// 127.0.0.1:masterPort under the name quotas.
func startSentinel(t *testing.T, masterPort int) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor quotas 127.0.0.1 %d 1\nsentinel down-after-milliseconds quotas 1000\nsentinel failover-timeout quotas 5000\n", port, dir, masterPort)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(redisBinary(t), conf, "--sentinel", "--logfile", filepath.Join(dir, "sentinel.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	eventually(t, "sentinel to see the master", func() bool {
		a, err := c.GetMasterAddrByName(context.Background(), "quotas").Result()
		return err == nil && len(a) == 2
	})
	return addr
}

// TestSentinelFailover: the Store finds the master through Sentinel; when
// the master is killed, Sentinel promotes the replica, the Store serves
// its outage mode meanwhile and then returns to shared counting on the
// new master, where the replicated count goes on.
func TestSentinelFailover(t *testing.T) {
	masterPort, replicaPort := freePort(t), freePort(t)
	master := startRedis(t, "--port", strconv.Itoa(masterPort), "--bind", "127.0.0.1")
	replica := startRedis(t, "--port", strconv.Itoa(replicaPort), "--bind", "127.0.0.1", "--replicaof", "127.0.0.1", strconv.Itoa(masterPort))
	eventually(t, "the replica to sync", func() bool {
		return strings.Contains(replica.do("INFO", "replication").(string), "master_link_status:up")
	})
	sentinel := startSentinel(t, masterPort)
	ev := newEvents()
	prefix := uniquePrefix(t)
	cfg := storeOpts(master, prefix)
	cfg.Redis.Addr, cfg.Redis.SentinelMaster, cfg.Redis.SentinelAddrs = "", "quotas", []string{sentinel}
	cfg.Redis.Timeout, cfg.Redis.DialTimeout = time.Second, time.Second
	cfg.OnModeChange = ev.record
	s := openStore(t, cfg)
	p := Plan{Name: "p", ArtifactsPerDay: 10}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		tk, err := s.AdmitN(ctx, "tenant", p, 1, 1)
		if err != nil {
			t.Fatalf("via sentinel: %v (%s)", err, s.Status().Err)
		}
		tk.Commit()
	}
	// The count reaches the replica before the master dies.
	master.do("WAIT", "1", "5000")
	master.stop()
	eventually(t, "the store to notice the failed master", func() bool {
		tk, err := s.AdmitN(ctx, "tenant", p, 1, 1)
		if err == nil {
			tk.Release()
			return false
		}
		return errors.Is(err, ErrUnavailable)
	})
	ev.next(t, ModeShared, ModeUnavailable)
	ev.next(t, ModeUnavailable, ModeShared)
	if !strings.Contains(replica.do("INFO", "replication").(string), "role:master") {
		t.Fatal("the replica was not promoted")
	}
	tk, err := s.AdmitN(ctx, "tenant", p, 1, 1)
	if err != nil || tk.Remaining != 6 {
		t.Fatalf("on the new master: %v %+v (3 signed before the failover)", err, tk)
	}
	tk.Commit()
}
