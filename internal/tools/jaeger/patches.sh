# Trims for building Jaeger v1.75.0's cmd/jaeger (the OpenTelemetry-Collector
# based "Jaeger v2" binary): link only what testenv.Jaeger configures
# (internal/test/testenv/jaeger.go):
#   receivers: otlp (gRPC and HTTP);   processors: batch;
#   exporters: jaeger_storage_exporter;
#   extensions: jaeger_storage (memory backend), jaeger_query (HTTP API, UI).
# Left out: the jaeger/zipkin/kafka receivers, the kafka/prometheus/otlp/debug
# exporters, the tail-sampling/attributes/filter/memory-limiter/adaptive-
# sampling processors, the spanmetrics connector, the healthcheck, pprof,
# zpages, sigv4, remote-sampling, remote-storage and expvar extensions, and
# the v1 storage factory's Kafka writer, and
# go-elasticsearch's typed API (840 generated packages; Jaeger uses only the
# untyped one). The default all-in-one configuration names some of them, so
# the binary must be run with --config; a configuration naming a component
# left out fails at startup with the collector's "unknown type" error: add it
# back by removing its line below.
#
# Sourced by scripts/build-tools.sh (never run on its own); see
# ../vault/patches.sh for how PATCH_MODULES, patch_source and delete_lines
# work. This file is part of the jaeger binary's cache key.

PATCH_MODULES=(github.com/jaegertracing/jaeger github.com/elastic/go-elasticsearch/v9)

# drop_components FILE NAME...: remove component package NAME (the last
# element of its import path) from Jaeger's component list in FILE: its
# import and its NAME.NewFactory() line, each of which must occur once.
drop_components() {
	local file=$1 name
	shift
	for name in "$@"; do
		delete_lines "$file" '^\s+"[^"]+/'"$name"'"$' 1
		delete_lines "$file" '^\s+'"$name"'\.NewFactory\(\),' 1
	done
}

patch_source() {
	local mod=$1 src=$2
	case $mod in
	github.com/jaegertracing/jaeger)
		drop_components "$src/cmd/jaeger/internal/components.go" \
			healthcheckv2extension pprofextension zpagesextension sigv4authextension \
			remotesampling expvar storagecleaner remotestorage \
			nopreceiver jaegerreceiver kafkareceiver zipkinreceiver \
			debugexporter otlpexporter otlphttpexporter nopexporter kafkaexporter prometheusexporter \
			memorylimiterprocessor tailsamplingprocessor attributesprocessor filterprocessor adaptivesampling \
			spanmetricsconnector
		# The v1 storage factory (which the query service's flags import):
		# no Kafka writer (Sarama, Kerberos).
		delete_lines "$src/internal/storage/v1/factory/factory.go" '^\s+"github\.com/jaegertracing/jaeger/internal/storage/v1/kafka"$' 1
		patch_once "$src/internal/storage/v1/factory/factory.go" \
			$'\tcase kafkaStorageType:\n\t\treturn kafka.NewFactory(), nil\n' ''
		;;
	github.com/elastic/go-elasticsearch/v9)
		delete_lines "$src/elasticsearch.go" '^\s+"github\.com/elastic/go-elasticsearch/v9/typedapi"$' 1
		delete_lines "$src/elasticsearch.go" '^\s+\*typedapi\.MethodAPI$' 1
		replace_func "$src/elasticsearch.go" \
			'func NewTypedClient(cfg Config) (*TypedClient, error) {' \
			$'\n\treturn nil, errors.New("elasticsearch: the typed API is not linked into this test build of jaeger (internal/tools/jaeger/patches.sh)")\n}'
		;;
	esac
}
