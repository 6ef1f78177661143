package otelacidic

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// Prometheus is a meter provider whose metrics an http.Handler serves in
// the Prometheus text format, through the OpenTelemetry Prometheus
// exporter, on a registry of its own.
type Prometheus struct {
	// MeterProvider records the metrics: pass it in Config.MeterProvider.
	MeterProvider *sdkmetric.MeterProvider
	// Registry holds the exporter's collector; register your own there to
	// serve them on the same handler.
	Registry *prometheus.Registry
	// Handler serves /metrics: mount it next to your routes.
	Handler http.Handler
}

// NewPrometheus returns a meter provider exported to Prometheus and the
// handler that serves it. Shut the MeterProvider down when done.
func NewPrometheus() (*Prometheus, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("otelacidic: prometheus exporter: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return &Prometheus{
		MeterProvider: mp,
		Registry:      reg,
		Handler:       promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}, nil
}
