/** @file metrics.c  Counters and gauges, rendered in Prometheus text format. */
#include "base/metrics.h"

#include <inttypes.h>
#include <stdio.h>

static int64_t values[M__COUNT];

static const struct {
	const char *name, *type, *help;
} info[M__COUNT] = {
#define X(id, name, type, help) [id] = {name, #type, help},
#include "base/metrics.def"
#undef X
};

void metrics_inc(enum metric_id id) { values[id]++; }
void metrics_dec(enum metric_id id) { values[id]--; }
void metrics_add(enum metric_id id, int64_t delta) { values[id] += delta; }
void metrics_set(enum metric_id id, int64_t value) { values[id] = value; }
int64_t metrics_get(enum metric_id id) { return values[id]; }

static metrics_renderer renderers[METRICS_MAX_RENDERERS];

void metrics_add_renderer(metrics_renderer fn)
{
	for (int i = 0; i < METRICS_MAX_RENDERERS; i++)
		if (!renderers[i]) {
			renderers[i] = fn;
			return;
		}
}

void metrics_remove_renderer(metrics_renderer fn)
{
	for (int i = 0; i < METRICS_MAX_RENDERERS; i++)
		if (renderers[i] == fn)
			renderers[i] = NULL;
}

size_t metrics_render(char *buf, size_t size)
{
	size_t off = 0;
	for (int i = 0; i < M__COUNT; i++) {
		char *at = off < size ? buf + off : NULL;
		int n = snprintf(at, at ? size - off : 0, "# HELP %s %s\n# TYPE %s %s\n%s %" PRId64 "\n",
				 info[i].name, info[i].help, info[i].name, info[i].type, info[i].name, values[i]);
		off += n > 0 ? (size_t)n : 0;
	}
	for (int i = 0; i < METRICS_MAX_RENDERERS; i++)
		if (renderers[i])
			off += renderers[i](off < size ? buf + off : NULL, off < size ? size - off : 0);
	return off;
}
