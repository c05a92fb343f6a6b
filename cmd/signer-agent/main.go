// Command signer-agent is the per-node signing daemon. See the README.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/internal/config"
)

func main() {
	os.Exit(run())
}

func run() int {
	var (
		cfgPath  = flag.String("config", "/etc/signer-agent/config.yaml", "configuration file")
		dev      = flag.Bool("dev", false, "run on the embedded dev configuration in --state-dir")
		stateDir = flag.String("state-dir", agent.DefaultDevStateDir, "dev mode state directory")
		check    = flag.String("check-config", "", "validate this configuration file and exit")
		version  = flag.Bool("version", false, "print the version and exit")
	)
	flag.Parse()
	if *version {
		fmt.Println("signer-agent", agent.Version)
		return 0
	}
	if *check != "" {
		if _, err := config.Load(*check); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("configuration OK:", *check)
		return 0
	}
	if *dev {
		p, err := agent.SetupDev(*stateDir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "signer-agent:", err)
			return 1
		}
		*cfgPath = p
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signer-agent:", err)
		return 1
	}
	log := newLogger(cfg.Logging)
	defer func() { _ = log.Sync() }()
	raiseNOFILE(log)
	memLimit, memSource := applyMemoryLimit(cfg.Limits.Resources)
	log.Info("memory limit", zap.Int64("bytes", memLimit), zap.String("source", memSource))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// SIGHUP (systemd's ExecReload) reloads; Run owns the loop.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := agent.New(ctx, agent.Options{ConfigPath: *cfgPath, Logger: log, ReloadSignals: hup, AfterCommit: faultHook()})
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return 1
	}
	ls, activated, err := agent.OpenListeners(a.Config())
	if err != nil {
		log.Error("listen failed", zap.Error(err))
		return 1
	}
	log.Info("listening", zap.Bool("socketActivated", activated), zap.Bool("dev", *dev))
	if err := a.Run(ctx, ls); err != nil {
		log.Error("serve failed", zap.Error(err))
		return 1
	}
	return 0
}

func newLogger(c config.Logging) *zap.Logger {
	var zc zap.Config
	if c.Format == "console" {
		zc = zap.NewDevelopmentConfig()
		zc.DisableStacktrace = true
	} else {
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "time"
		zc.EncoderConfig.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	}
	if lvl, err := zapcore.ParseLevel(c.Level); err == nil {
		zc.Level = zap.NewAtomicLevelAt(lvl)
	}
	l, err := zc.Build()
	if err != nil {
		return zap.NewNop()
	}
	return l
}
